// swift-tools-version:6.1
import PackageDescription

/// Upcoming features on for every target, as swift-log, Hummingbird and gRPC do.
let settings: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let grpcCore = Target.Dependency.product(name: "GRPCCore", package: "grpc-swift-2")
let grpcHTTP2 = Target.Dependency.product(name: "GRPCNIOTransportHTTP2", package: "grpc-swift-nio-transport")
let grpcProtobuf = Target.Dependency.product(name: "GRPCProtobuf", package: "grpc-swift-protobuf")
let swiftProtobuf = Target.Dependency.product(name: "SwiftProtobuf", package: "swift-protobuf")
let logging = Target.Dependency.product(name: "Logging", package: "swift-log")
let lifecycle = Target.Dependency.product(name: "ServiceLifecycle", package: "swift-service-lifecycle")
let unixSignals = Target.Dependency.product(name: "UnixSignals", package: "swift-service-lifecycle")
let argumentParser = Target.Dependency.product(name: "ArgumentParser", package: "swift-argument-parser")
let grdb = Target.Dependency.product(name: "GRDB", package: "GRDB.swift")
let prometheus = Target.Dependency.product(name: "Prometheus", package: "swift-prometheus")
let nioPosix = Target.Dependency.product(name: "NIOPosix", package: "swift-nio")
let nioHTTP1 = Target.Dependency.product(name: "NIOHTTP1", package: "swift-nio")
let nioCore = Target.Dependency.product(name: "NIOCore", package: "swift-nio")
let nioSSL = Target.Dependency.product(name: "NIOSSL", package: "swift-nio-ssl")
let nioTLS = Target.Dependency.product(name: "NIOTLS", package: "swift-nio")
let x509 = Target.Dependency.product(name: "X509", package: "swift-certificates")
let asn1 = Target.Dependency.product(name: "SwiftASN1", package: "swift-asn1")
let crypto = Target.Dependency.product(name: "Crypto", package: "swift-crypto")
let certificateReloading = Target.Dependency.product(name: "NIOCertificateReloading", package: "swift-nio-extras")

let package = Package(
    name: "Conclave",
    products: [
        .library(name: "ConclaveCore", targets: ["ConclaveFederation", "ConclaveLearning", "ConclaveTensor", "ConclaveCrypto",
                                                 "ConclaveSecAgg", "ConclavePrivacy"]),
        .executable(name: "conclave", targets: ["ConclaveCLI"]),
        .executable(name: "conclave-coordinator", targets: ["CoordinatorDaemon"]),
        .executable(name: "conclave-client", targets: ["ClientDaemon"]),
        .executable(name: "conclave-wire-fuzz", targets: ["ConclaveWireFuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/grpc/grpc-swift-2", from: "2.4.3"),
        .package(url: "https://github.com/grpc/grpc-swift-nio-transport", from: "2.9.2"),
        .package(url: "https://github.com/grpc/grpc-swift-protobuf", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-protobuf", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-certificates", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // C libraries, found through pkg-config.
        .systemLibrary(name: "CSodium", path: "Sources/CSodium", pkgConfig: "libsodium",
                       providers: [.apt(["libsodium-dev"])]),
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "COpenBLAS", path: "Sources/COpenBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CPrefetch", path: "Sources/CPrefetch"),
        // DP-SGD's noise loop, vectorised: C, so it can be built for AVX-512 and AVX2 and chosen at run time
        // (Swift has no per-function target). Optimised in debug builds too: the tests draw millions of values.
        .target(name: "CGaussian", path: "Sources/CGaussian",
                cSettings: [.unsafeFlags(["-O2"], .when(configuration: .debug))]),

        // The pure core: no sockets, no SQL, no logging.
        .target(name: "ConclaveCrypto", dependencies: ["CSodium", "COpenSSL"], swiftSettings: settings),
        .target(name: "ConclaveTensor", dependencies: ["COpenBLAS", "CPrefetch"], swiftSettings: settings),
        .target(name: "ConclaveLearning", dependencies: ["ConclaveTensor", "CZlib"], swiftSettings: settings),
        .target(name: "ConclaveSecAgg", dependencies: ["ConclaveCrypto"], swiftSettings: settings),
        // Optimised even in debug builds: the accountant's FFT and series loops are 20× slower unoptimised,
        // which would make `make test` (a debug build) crawl through the oracle vectors.
        .target(name: "ConclavePrivacy", dependencies: ["ConclaveCrypto", "CGaussian"],
                swiftSettings: settings + [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        .target(name: "ConclaveFederation",
                dependencies: ["ConclaveLearning", "ConclaveCrypto", "ConclaveSecAgg", "ConclavePrivacy"],
                swiftSettings: settings),

        // The edges.
        .target(name: "ConclaveConfig", dependencies: ["ConclaveFederation"], swiftSettings: settings),
        .target(name: "ConclaveStorage", dependencies: ["ConclaveFederation", "ConclaveCrypto", grdb],
                swiftSettings: settings),
        .target(name: "ConclaveWire", dependencies: [grpcCore, grpcProtobuf, swiftProtobuf],
                path: "Protocols/Generated", swiftSettings: settings),
        // What both daemons and the CLI share: the wire conversions, logging and the wall clock.
        .target(name: "ConclaveWireConversions",
                dependencies: ["ConclaveWire", "ConclaveFederation", "ConclaveLearning", "ConclavePrivacy", "ConclaveSecAgg",
                               grpcCore, swiftProtobuf],
                swiftSettings: settings),
        // Identities: the federation CA, certificates and CSRs, identity files, enrolment bundles, client TLS.
        .target(name: "ConclaveIdentity", dependencies: [x509, asn1, crypto, grpcHTTP2], swiftSettings: settings),
        .target(name: "ConclaveSupport", dependencies: ["ConclaveFederation", "ConclaveCrypto", logging], swiftSettings: settings),
        // The operator's client of the Admin service: the CLI links this, never the coordinator.
        .target(name: "ConclaveAdminClient",
                dependencies: ["ConclaveWire", "ConclaveConfig", "ConclaveIdentity", grpcCore, grpcHTTP2, swiftProtobuf, x509, asn1,
                               crypto],
                swiftSettings: settings),

        // The daemons: libraries beside their thin executables.
        .target(name: "ConclaveCoordinator",
                dependencies: ["ConclaveWire", "ConclaveWireConversions", "ConclaveSupport", "ConclaveFederation",
                               "ConclaveConfig", "ConclaveStorage", "ConclaveIdentity", grpcCore, grpcHTTP2, swiftProtobuf,
                               logging, prometheus, nioCore, nioPosix, nioHTTP1, nioSSL, nioTLS, x509, asn1, crypto,
                               certificateReloading],
                path: "Coordinator/Library", swiftSettings: settings),
        .executableTarget(name: "CoordinatorDaemon",
                          dependencies: ["ConclaveCoordinator", "ConclaveIdentity", "ConclaveSupport", "ConclaveStorage", "ConclaveWire",
                                         "ConclaveWireConversions", grpcCore, grpcHTTP2, swiftProtobuf, x509, asn1, crypto,
                                         argumentParser, lifecycle,
                                         unixSignals, logging],
                          path: "Coordinator/Daemon", swiftSettings: settings),
        // The silo's own privacy ledger (its SQLite file): the agent links this, never the coordinator's storage.
        .target(name: "ConclaveSiloLedger", dependencies: ["ConclavePrivacy", grdb], swiftSettings: settings),
        .target(name: "ConclaveAgent",
                dependencies: ["ConclaveWire", "ConclaveWireConversions", "ConclaveSupport", "ConclaveFederation",
                               "ConclaveConfig", "ConclaveIdentity", "ConclaveAdminClient", "ConclaveSiloLedger", "ConclavePrivacy",
                               grpcCore, grpcHTTP2, swiftProtobuf,
                               logging, x509],
                path: "Client/Library", swiftSettings: settings),
        .executableTarget(name: "ClientDaemon",
                          dependencies: ["ConclaveAgent", "ConclaveAdminClient", "ConclaveIdentity", "ConclaveSupport", "ConclavePrivacy", "ConclaveCrypto",
                                         argumentParser, lifecycle, unixSignals, logging, grpcCore, x509],
                          path: "Client/Daemon", swiftSettings: settings),
        .executableTarget(name: "ConclaveCLI",
                          dependencies: ["ConclaveAdminClient", "ConclaveIdentity", "ConclaveWireConversions", "ConclaveSupport",
                                         "ConclavePrivacy", "ConclaveCrypto", crypto, x509, asn1,
                                         argumentParser, logging, grpcCore, swiftProtobuf],
                          swiftSettings: settings),

        // The wire decoders under libFuzzer (or replaying inputs when built without it): Tests/Fuzz/WireFuzz.swift.
        .executableTarget(name: "ConclaveWireFuzz",
                          dependencies: ["ConclaveWireConversions", "ConclaveFederation", "ConclaveLearning", "ConclaveSecAgg", "ConclaveWire",
                                         swiftProtobuf],
                          path: "Tests/Fuzz", swiftSettings: settings),
        .target(name: "ConclaveTesting", dependencies: ["ConclaveLearning"], path: "Tests/ConclaveTesting",
                swiftSettings: settings),
        .testTarget(name: "ConclaveTensorTests", dependencies: ["ConclaveTensor"], swiftSettings: settings),
        .testTarget(name: "ConclaveCryptoTests", dependencies: ["ConclaveCrypto"], swiftSettings: settings),
        .testTarget(name: "ConclavePrivacyTests", dependencies: ["ConclavePrivacy", "CGaussian"], exclude: ["Fixtures"],
                    swiftSettings: settings),
        .testTarget(name: "ConclaveSecAggTests", dependencies: ["ConclaveSecAgg", "ConclaveCrypto"], swiftSettings: settings),
        .testTarget(name: "ConclaveLearningTests", dependencies: ["ConclaveLearning", "ConclaveTesting"],
                    swiftSettings: settings),
        .testTarget(name: "ConclaveFederationTests", dependencies: ["ConclaveFederation", "ConclavePrivacy", "ConclaveTesting"],
                    swiftSettings: settings),
        .testTarget(name: "ConclaveConfigTests", dependencies: ["ConclaveConfig", "ConclavePrivacy"], swiftSettings: settings),
        .testTarget(name: "ConclaveStorageTests", dependencies: ["ConclaveStorage", "ConclaveTesting", "ConclavePrivacy", "ConclaveCrypto", grdb],
                    swiftSettings: settings),
        .testTarget(name: "EndToEndTests",
                    dependencies: ["ConclaveCoordinator", "ConclaveAgent", "ConclaveAdminClient", "ConclaveWireConversions",
                                   "ConclaveSupport", "ConclaveIdentity", "ConclaveTesting", "ConclaveLearning", "ConclaveSiloLedger", x509, asn1, crypto, grpcCore, grpcHTTP2, swiftProtobuf, grdb],
                    swiftSettings: settings),
    ]
)
