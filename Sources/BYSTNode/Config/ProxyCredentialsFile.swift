import BYSTProto

/// `http_proxy_credentials_file`: one line `user:password` (or `DOMAIN\user:password` for
/// NTLM), a final newline not part of it. Like the key store, the file must be ours (or
/// root's), not a symbolic link, and not readable or writable by group or others (0600).
enum ProxyCredentialsFile {
    static let key = "http_proxy_credentials_file"
    static let maxBytes = 4096

    struct Failure: Error, CustomStringConvertible {
        let path: String
        let detail: String
        var description: String { "\(ProxyCredentialsFile.key) \(path.configQuoted): \(detail)" }
    }

    static func read(_ path: String) throws(Failure) -> ProxyCredentials {
        let read: [UInt8]?
        do throws(AtomicFile.SecretFileFailure) { read = try AtomicFile.readSecret(path) } catch {
            throw Failure(path: path, detail: "\(error)")
        }
        guard var bytes = read else { throw Failure(path: path, detail: "no such file") }
        defer { SecretBytes.wipe(&bytes) }
        guard bytes.count <= maxBytes else { throw Failure(path: path, detail: "over \(maxBytes) bytes") }
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !bytes.contains(UInt8(ascii: "\n")), !bytes.contains(UInt8(ascii: "\r")), let line = String(validating: bytes, as: UTF8.self),
              let credentials = ProxyCredentials.parse(line: line)
        else { throw Failure(path: path, detail: "must hold one line user:password (or DOMAIN\\user:password) of UTF-8 text") }
        return credentials
    }
}
