// swift-tools-version:6.0
// libFuzzer targets for BYST's parsers of untrusted bytes (docs/RELIABILITY.md, "Fuzzing").
// Run them with `bash scripts/fuzz.sh`; the main package never sees this one.
//
// Our modules are the main package's own sources (symlinks under Sources/), built here a
// second time so that only they get the fuzzer's coverage and AddressSanitizer
// instrumentation: the dependencies build as in a plain release, which keeps the cold build
// short and libFuzzer's coverage feedback about our code. `-enable-testing` lets the
// targets reach internal parsers (`@testable import`) in this release build.
// The dependencies mirror ../Package.swift: keep the two in step (scripts/fuzz.sh checks).
import PackageDescription

let instrumented: [SwiftSetting] = [.unsafeFlags(["-sanitize=fuzzer,address", "-enable-testing"])]

let package = Package(
    name: "BYSTFuzz",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/LebJe/TOMLKit.git", from: "0.6.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CCrypto", pkgConfig: "libcrypto", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(
            name: "BYSTProto",
            dependencies: ["CCrypto", "CZstd", .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: instrumented
        ),
        .target(name: "CTun"),
        .target(name: "Tun", dependencies: ["CTun", "BYSTProto"], swiftSettings: instrumented),
        .target(
            name: "BYSTNode",
            dependencies: [
                "BYSTProto", "Tun",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "TOMLKit", package: "TOMLKit"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: instrumented
        ),
        // Declares libFuzzer's LLVMFuzzerRunDriver, which our own main calls.
        .target(name: "CFuzzDriver"),
        // One binary, every target: `byst-fuzz TARGET [libFuzzer options] [corpus dirs]`.
        .executableTarget(
            name: "byst-fuzz",
            dependencies: [
                "BYSTProto", "Tun", "BYSTNode", "CFuzzDriver",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: instrumented,
            // lld: gold fails (internal error) on libFuzzer's archive next to SwiftPM's `main` alias.
            linkerSettings: [.unsafeFlags(["-sanitize=fuzzer,address", "-use-ld=lld"])]
        ),
    ],
    swiftLanguageModes: [.v6]
)
