// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "BYST",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "byst", targets: ["byst"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        // TLS under the HTTP transport (https:// endpoints and https_listen).
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        // Metrics API and its Prometheus exporter (`metrics_listen`, docs/OPERATIONS.md "Metrics").
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // OpenSSL 3 libcrypto: X25519, AEADs, hashes, HMAC, CSPRNG (docs/ARCHITECTURE.md §8).
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        // zstd for optional record compression.
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(
            name: "BYSTProto",
            dependencies: [
                "CCrypto", "CZstd",
                .product(name: "NIOCore", package: "swift-nio"),
            ]
        ),
        // ioctl plumbing for TUNSETIFF that Swift cannot spell (variadic ioctl, ifreq unions).
        .target(name: "CTun"),
        // Linux TUN devices and rtnetlink interface configuration.
        .target(name: "Tun", dependencies: ["CTun", "BYSTProto"]),
        .target(
            name: "BYSTNode",
            dependencies: [
                "BYSTProto", "Tun",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // WebSocket frame codec for `http_mode = "websocket"` (PROTOCOL.md §6.4).
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .executableTarget(name: "byst", dependencies: ["BYSTNode"]),
        // Load generators for the tests and benchmarks, not shipped: `byst-bench flood`
        // (Tests/E2E/flood.sh), `byst-bench registry` (scripts/bench-registry.sh). Uses BYSTNode's
        // `package` declarations, nothing public added for it.
        .executableTarget(
            name: "byst-bench",
            dependencies: [
                "BYSTNode", "BYSTProto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/BenchTool"
        ),
        // Release-mode microbenchmark, not a test: `swift run -c release byst-record-bench`.
        .executableTarget(
            name: "byst-record-bench",
            dependencies: ["BYSTProto", .product(name: "NIOCore", package: "swift-nio")],
            path: "Benchmarks/RecordBench"
        ),
        // Benchmark reference, not a VPN: `scripts/bench-rtt.sh` pings through it (docs/PERFORMANCE.md, "Round trip (ping RTT)").
        .executableTarget(
            name: "byst-lean-relay",
            dependencies: ["CTun", "CCrypto", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio")],
            path: "Benchmarks/LeanRelay"
        ),
        .testTarget(name: "TunTests", dependencies: ["Tun", "CTun", "BYSTProto"]),
        .testTarget(
            name: "BYSTProtoTests",
            dependencies: ["BYSTProto", .product(name: "NIOCore", package: "swift-nio")],
            resources: [.copy("Vectors")]
        ),
        .testTarget(
            name: "BYSTNodeTests",
            dependencies: [
                "BYSTNode", "BYSTProto", "Tun",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
