import BYSTProto
import Glibc

/// A secret file that holds one line of UTF-8 text (a final LF or CRLF is not part of it):
/// `registry_password_file`, `http_proxy_credentials_file`. It passes `AtomicFile.readSecret`'s
/// checks on the open descriptor (ours or root's, not a symbolic link, mode 0600 or stricter).
enum SecretLineFile {
    enum Failure: Error, CustomStringConvertible {
        case missing
        case unusable(AtomicFile.SecretFileFailure)
        case tooLarge(maxBytes: Int)
        case empty
        case notOneLine

        var description: String {
            switch self {
            case .missing: "no such file"
            case .unusable(let failure): failure.description
            case .tooLarge(let maxBytes): "over \(maxBytes) bytes"
            case .empty: "is empty"
            case .notOneLine: "must hold one line of UTF-8 text"
            }
        }
    }

    static func read(_ path: String, maxBytes: Int) throws(Failure) -> String {
        let read: [UInt8]?
        do throws(AtomicFile.SecretFileFailure) { read = try AtomicFile.readSecret(path, limit: maxBytes) } catch {
            if case .io(let failure) = error, failure.errno == EFBIG { throw .tooLarge(maxBytes: maxBytes) }
            throw .unusable(error)
        }
        guard var bytes = read else { throw .missing }
        defer { SecretBytes.wipe(&bytes) }
        if bytes.last == UInt8(ascii: "\n") { bytes.removeLast() }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        guard !bytes.isEmpty else { throw .empty }
        guard !bytes.contains(UInt8(ascii: "\n")), !bytes.contains(UInt8(ascii: "\r")),
              let line = String(validating: bytes, as: UTF8.self)
        else { throw .notOneLine }
        return line
    }
}
