import Glibc

// `byst-bench`: load generators for BYST's own tests and benchmarks, kept out of the shipped
// `byst` (Benchmarks/BenchTool; docs/PERFORMANCE.md, docs/RELIABILITY.md).
exit(await BenchCommand.run(Array(CommandLine.arguments.dropFirst())))
