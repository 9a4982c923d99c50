// `byst ha release` with etcd (systemd's ExecStopPost): a gateway process that died without
// revoking its lease leaves its port key for up to one lease. If the key still names this
// node, the lease it hangs on is revoked: etcd deletes the key and watching standbys claim
// the port at once. A key naming another node (a standby already took over) is left alone.
//
//   range /byst/ports/<port> ─ names us ─▶ lease/revoke (that key's lease)
//                            └ free, or another owner ─▶ nothing
import NIOCore

enum EtcdPortRelease {
    enum Outcome: Equatable, CustomStringConvertible {
        case free
        case ownedBy(String)
        case revoked(lease: Int64)

        var description: String {
            switch self {
            case .free: "free"
            case .ownedBy(let node): "owned by '\(node)', left alone"
            case .revoked(let lease): "ours: revoked lease \(lease), the port is free"
            }
        }
    }

    /// Releases `port` if its key names `nodeName`. A member that cannot serve a call is
    /// skipped for the next (each call is tried once per member).
    static func release(_ port: String, nodeName: String, http: EtcdHTTPClient, timeout: Duration,
                        completion: @escaping (Result<Outcome, EtcdCallError>) -> Void) {
        let key = EtcdRegistryClient.key(port)
        retrying(http, attempts: http.endpoints.count) { done in
            http.call("/v3/kv/range", EtcdRangeRequest(key: key), as: EtcdRangeResponse.self, timeout: timeout, completion: done)
        } completion: { result in
            switch result {
            case .failure(let error):
                completion(.failure(error))
            case .success(let range):
                guard let kv = range.kvs?.first else { return completion(.success(.free)) }
                let owner = EtcdRegistryClient.owner(kv)
                guard owner.node == nodeName, kv.leaseID != 0 else { return completion(.success(.ownedBy(owner.node))) }
                retrying(http, attempts: http.endpoints.count) { done in
                    http.call("/v3/lease/revoke", EtcdLeaseIDRequest(ID: EtcdInt(kv.leaseID)), as: EtcdResponseHeaderOnly.self,
                              timeout: timeout, completion: done)
                } completion: { result in
                    switch result {
                    case .success, .failure(.refused(404, _)): completion(.success(.revoked(lease: kv.leaseID)))
                    case .failure(let error): completion(.failure(error))
                    }
                }
            }
        }
    }

    private static func retrying<T>(_ http: EtcdHTTPClient, attempts: Int,
                                    _ call: @escaping (@escaping (Result<T, EtcdCallError>) -> Void) -> Void,
                                    completion: @escaping (Result<T, EtcdCallError>) -> Void) {
        call { result in
            if case .failure(.unavailable) = result, attempts > 1 {
                retrying(http, attempts: attempts - 1, call, completion: completion)
            } else {
                completion(result)
            }
        }
    }
}
