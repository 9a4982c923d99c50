/// The header fields of one HTTP message, in wire order (RFC 9110 §5).
///
/// **Invariants**: fields keep the order they were added or parsed in; names compare
/// ASCII case-insensitively everywhere (lookups and `==`), values exactly. Nothing here
/// validates: the parser only adds valid fields, and code writing heads adds its own.
public struct HTTPHeaders: Sendable, Equatable, Sequence, CustomStringConvertible {
    public typealias Element = (name: String, value: String)

    private var fields: [Field]

    private struct Field: Sendable {
        var name: String
        var value: String
    }

    public init(_ fields: [(String, String)] = []) {
        self.fields = fields.map { Field(name: $0.0, value: $0.1) }
    }

    /// The number of fields (not of distinct names).
    public var count: Int { fields.count }

    /// The first value of the field called `name`.
    public subscript(_ name: String) -> String? {
        fields.first { HTTPSyntax.equalsIgnoringCase($0.name, name) }?.value
    }

    /// Every value of the fields called `name`, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { HTTPSyntax.equalsIgnoringCase($0.name, name) }.map(\.value)
    }

    /// Whether `token` is an element of the comma-separated list formed by all fields
    /// called `name` (RFC 9110 §5.3), compared case-insensitively after trimming OWS.
    public func containsToken(_ token: String, in name: String) -> Bool {
        values(name).contains { value in
            HTTPSyntax.listElements(value).contains { HTTPSyntax.equalsIgnoringCase($0, token) }
        }
    }

    /// Whether any field is called `name`.
    public func contains(_ name: String) -> Bool {
        fields.contains { HTTPSyntax.equalsIgnoringCase($0.name, name) }
    }

    /// Appends a field; earlier fields with the same name stay.
    public mutating func add(_ name: String, _ value: String) {
        fields.append(Field(name: name, value: value))
    }

    /// Removes every field called `name`.
    public mutating func remove(_ name: String) {
        fields.removeAll { HTTPSyntax.equalsIgnoringCase($0.name, name) }
    }

    public func makeIterator() -> some IteratorProtocol<Element> {
        fields.lazy.map { (name: $0.name, value: $0.value) }.makeIterator()
    }

    /// `[Name: value, …]`, for logs and test output.
    public var description: String {
        "[" + fields.map { "\($0.name): \($0.value)" }.joined(separator: ", ") + "]"
    }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.count == rhs.fields.count
            && zip(lhs.fields, rhs.fields).allSatisfy { l, r in
                l.value == r.value && HTTPSyntax.equalsIgnoringCase(l.name, r.name)
            }
    }
}
