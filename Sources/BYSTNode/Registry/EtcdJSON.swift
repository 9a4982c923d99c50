// The etcd v3 JSON gateway's messages, as far as EtcdRegistryClient uses them
// (field names as the gateway spells them: snake_case, but `ID`/`TTL` for leases).
//
// The gateway writes proto3 JSON: int64 fields are strings, and zero values (0, false,
// empty lists, the PUT event type) are left out. So every response field here is optional
// and read through an accessor that supplies the zero value.
import Foundation
import NIOCore

/// An int64 as the gateway writes it: a JSON string ("2324035643292406278"); a number is
/// accepted too. Lease IDs exceed 2^53, so they are always sent as strings.
struct EtcdInt: Codable, Sendable, Equatable {
    var value: Int64

    init(_ value: Int64) { self.value = value }

    init(from decoder: Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let text = try? container.decode(String.self) {
            guard let value = Int64(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "not an int64: \(text.prefix(40))")
            }
            self.value = value
        } else {
            value = try container.decode(Int64.self)
        }
    }

    func encode(to encoder: Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(String(value))
    }
}

/// Keys and values travel base64-encoded (proto `bytes`).
enum EtcdBytes {
    static func encode(_ text: String) -> String { Data(text.utf8).base64EncodedString() }

    static func decode(_ base64: String?) -> String? {
        guard let base64, let data = Data(base64Encoded: base64) else { return nil }
        return String(bytes: data, encoding: .utf8)
    }
}

// MARK: Requests

struct EtcdLeaseGrantRequest: Encodable {
    var TTL: Int64
}

/// Keepalive and revoke both name just the lease.
struct EtcdLeaseIDRequest: Encodable {
    var ID: EtcdInt
}

struct EtcdRangeRequest: Encodable {
    var key: String
}

struct EtcdCompare: Encodable {
    var key: String
    var target: String
    var result = "EQUAL"
    var create_revision: EtcdInt?
    var lease: EtcdInt?

    /// The key does not exist (never created, or deleted since).
    static func absent(_ key: String) -> EtcdCompare {
        EtcdCompare(key: key, target: "CREATE", create_revision: EtcdInt(0))
    }

    /// The key is attached to `lease`.
    static func leased(_ key: String, to lease: Int64) -> EtcdCompare {
        EtcdCompare(key: key, target: "LEASE", lease: EtcdInt(lease))
    }
}

struct EtcdPutRequest: Encodable {
    var key: String
    var value: String
    var lease: EtcdInt
}

/// One operation of a txn branch: exactly one field is set (nil fields are not encoded).
struct EtcdRequestOp: Encodable {
    var request_put: EtcdPutRequest?
    var request_range: EtcdRangeRequest?
    var request_delete_range: EtcdRangeRequest?
}

struct EtcdTxnRequest: Encodable {
    var compare: [EtcdCompare]
    var success: [EtcdRequestOp]
    var failure: [EtcdRequestOp] = []
}

struct EtcdWatchCreateRequest: Encodable {
    var key: String
    var start_revision: EtcdInt
}

struct EtcdWatchRequest: Encodable {
    var create_request: EtcdWatchCreateRequest
}

// MARK: Responses

struct EtcdResponseHeader: Decodable {
    var revision: EtcdInt?
}

struct EtcdLeaseGrantResponse: Decodable {
    var ID: EtcdInt?
    var TTL: EtcdInt?
    var error: String?
}

struct EtcdLeaseKeepAliveResponse: Decodable {
    var ID: EtcdInt?
    /// Absent (zero) when the lease is dead: expired, revoked or unknown.
    var TTL: EtcdInt?
}

struct EtcdKeyValue: Decodable {
    var key: String?
    var mod_revision: EtcdInt?
    var value: String?
    var lease: EtcdInt?

    var modRevision: Int64 { mod_revision?.value ?? 0 }
    var leaseID: Int64 { lease?.value ?? 0 }
}

struct EtcdRangeResponse: Decodable {
    var header: EtcdResponseHeader?
    var kvs: [EtcdKeyValue]?
}

struct EtcdResponseOp: Decodable {
    var response_range: EtcdRangeResponse?
}

struct EtcdTxnResponse: Decodable {
    var header: EtcdResponseHeader?
    /// Absent when the compare failed.
    var succeeded: Bool?
    var responses: [EtcdResponseOp]?
}

struct EtcdEvent: Decodable {
    /// Absent for PUT; "DELETE" otherwise.
    var type: String?
    var kv: EtcdKeyValue?

    var isDelete: Bool { type == "DELETE" }
}

struct EtcdWatchResponse: Decodable {
    var created: Bool?
    var canceled: Bool?
    var compact_revision: EtcdInt?
    var cancel_reason: String?
    var events: [EtcdEvent]?
}

/// An answer whose content we do not need (revoke): only that it came, as JSON.
struct EtcdResponseHeaderOnly: Decodable {}

/// A line of a streaming RPC: `{"result":{…}}`, or `{"error":{…}}` when the RPC failed.
struct EtcdStreamLine<Result: Decodable>: Decodable {
    var result: Result?
}

/// A non-2xx answer: `{"error":"…","message":"…","code":5}`.
struct EtcdErrorResponse: Decodable {
    var error: String?
    var message: String?
    var code: Int?
}

// MARK: Coding

enum EtcdJSON {
    static func encode<T: Encodable>(_ value: T) throws(RegistryFailure) -> ByteBuffer {
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            return ByteBuffer(bytes: try encoder.encode(value))
        } catch {
            throw RegistryFailure("cannot encode an etcd request: \(error)")
        }
    }

    /// Decodes `bytes`; garbage gives a failure naming `what` and the start of the text.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: ByteBuffer, what: String) throws(RegistryFailure) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(bytes.readableBytesView))
        } catch {
            throw RegistryFailure("unreadable \(what) from etcd: \(excerpt(bytes))")
        }
    }

    /// The first 120 bytes of a body, printable, for error messages.
    static func excerpt(_ bytes: ByteBuffer) -> String {
        let head = bytes.readableBytesView.prefix(120).map { (0x20...0x7E).contains($0) ? Character(UnicodeScalar($0)) : "." }
        return "\"" + String(head) + (bytes.readableBytes > 120 ? "…\"" : "\"")
    }
}
