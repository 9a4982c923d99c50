/// The user and password a forward proxy is answered with. For NTLM a user may be written
/// `DOMAIN\user`; Basic and Digest send the name as written.
public struct ProxyCredentials: Sendable, Equatable {
    public var user: String
    public var password: String

    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }

    /// NTLM's user and domain: `DOMAIN\user` split at the first backslash, else no domain.
    public var ntlmAccount: (domain: String, user: String) {
        guard let slash = user.firstIndex(of: "\\") else { return ("", user) }
        return (String(user[..<slash]), String(user[user.index(after: slash)...]))
    }

    /// `user:password` or `DOMAIN\user:password` (the file `http_proxy_credentials_file`
    /// names): the user up to the first colon, the password the rest. Nil if there is no
    /// colon or no user.
    public static func parse(line: String) -> ProxyCredentials? {
        guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else { return nil }
        return ProxyCredentials(user: String(line[..<colon]), password: String(line[line.index(after: colon)...]))
    }
}
