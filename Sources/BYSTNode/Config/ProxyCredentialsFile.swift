import BYSTProto

/// `http_proxy_credentials_file`: one line `user:password` (or `DOMAIN\user:password` for
/// NTLM) in a secret file (`SecretLineFile`: ours or root's, no symbolic link, mode 0600).
enum ProxyCredentialsFile {
    static let key = "http_proxy_credentials_file"
    static let maxBytes = 4096

    struct Failure: Error, CustomStringConvertible {
        let path: String
        let detail: String
        var description: String { "\(ProxyCredentialsFile.key) \(path.configQuoted): \(detail)" }
    }

    static func read(_ path: String) throws(Failure) -> ProxyCredentials {
        let oneLine = "must hold one line user:password (or DOMAIN\\user:password) of UTF-8 text"
        let line: String
        do throws(SecretLineFile.Failure) { line = try SecretLineFile.read(path, maxBytes: maxBytes) } catch {
            switch error {
            case .empty, .notOneLine: throw Failure(path: path, detail: oneLine)
            default: throw Failure(path: path, detail: "\(error)")
            }
        }
        guard let credentials = ProxyCredentials.parse(line: line) else { throw Failure(path: path, detail: oneLine) }
        return credentials
    }
}
