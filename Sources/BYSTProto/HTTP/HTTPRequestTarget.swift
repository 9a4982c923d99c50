/// A request target split into path and query (RFC 9112 §3.2).
///
/// Accepts origin-form (`/p?a=1&b=2`) and absolute-form (`http://host:port/p?…`), which
/// a server MUST accept (RFC 9112 §3.2.2) and forward proxies send; authority-form
/// (CONNECT) and asterisk-form (OPTIONS *) are not link targets and are refused.
///
/// **Invariants**: `path` starts with "/" and has no "?"; query items keep their raw,
/// percent-encoded text; the target had only visible ASCII and no fragment.
public struct HTTPRequestTarget: Sendable, Equatable {
    /// One `name=value` element of the query; `value` is "" when there is no "=".
    public struct QueryItem: Sendable, Equatable {
        public var name: String
        public var value: String

        public init(_ name: String, _ value: String) {
            self.name = name
            self.value = value
        }
    }

    /// `host[:port]` of an absolute-form target, nil for origin-form.
    public var authority: String?
    public var path: String
    /// The query split on "&" (empty elements dropped), each element at its first "=".
    public var query: [QueryItem]

    public init(parsing target: String) throws(HTTPError) {
        // Visible ASCII only (RFC 3986 characters); "#" starts a fragment, which a
        // request target never carries.
        guard !target.isEmpty,
              target.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "#") })
        else { throw .badTarget }
        var rest = Substring(target)
        if rest.hasPrefix("/") {
            authority = nil
        } else {
            guard let scheme = rest.firstIndex(of: ":"),
                  ["http", "https"].contains(where: { HTTPSyntax.equalsIgnoringCase($0, rest[..<scheme]) }),
                  rest[scheme...].hasPrefix("://")
            else { throw .badTarget }
            rest = rest[rest.index(scheme, offsetBy: 3)...]
            let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
            guard authorityEnd > rest.startIndex else { throw .badTarget }
            authority = String(rest[..<authorityEnd])
            rest = rest[authorityEnd...]
        }
        let queryStart = rest.firstIndex(of: "?")
        let path = rest[..<(queryStart ?? rest.endIndex)]
        // RFC 9112 §3.2.2: an absolute-form target with an empty path means "/".
        self.path = path.isEmpty ? "/" : String(path)
        if let queryStart {
            query = rest[rest.index(after: queryStart)...]
                .split(separator: "&")
                .map { element in
                    guard let equals = element.firstIndex(of: "=") else { return QueryItem(String(element), "") }
                    return QueryItem(String(element[..<equals]), String(element[element.index(after: equals)...]))
                }
        } else {
            query = []
        }
    }

    /// The raw value of the first query item called `name` (case-sensitive).
    public func value(_ name: String) -> String? {
        query.first { $0.name == name }?.value
    }
}
