import Foundation

/// A JSON document's shape: every key path with its type, `peers[].sessions[].links[].rtt_ms:
/// number`, for tests that pin a document's schema (StatusSchemaTests).
enum JSONShape: Decodable {
    case null, bool, number, string
    case array([JSONShape])
    case object([String: JSONShape])

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if (try? container.decode(Bool.self)) != nil {
            self = .bool
        } else if (try? container.decode(Double.self)) != nil {
            self = .number
        } else if (try? container.decode(String.self)) != nil {
            self = .string
        } else if let array = try? container.decode([JSONShape].self) {
            self = .array(array)
        } else {
            self = .object(try container.decode([String: JSONShape].self))
        }
    }

    /// `path: type` of every value below this one (arrays as `[]`, their elements merged).
    func paths(prefix: String = "") -> Set<String> {
        switch self {
        case .null: ["\(prefix): null"]
        case .bool: ["\(prefix): bool"]
        case .number: ["\(prefix): number"]
        case .string: ["\(prefix): string"]
        case .array(let elements): elements.reduce(["\(prefix): array"]) { $0.union($1.paths(prefix: prefix + "[]")) }
        case .object(let members):
            members.reduce(prefix.isEmpty ? [] : ["\(prefix): object"]) { paths, member in
                paths.union(member.value.paths(prefix: prefix.isEmpty ? member.key : "\(prefix).\(member.key)"))
            }
        }
    }

    static func paths(of json: String) throws -> Set<String> {
        try JSONDecoder().decode(JSONShape.self, from: Data(json.utf8)).paths()
    }
}
