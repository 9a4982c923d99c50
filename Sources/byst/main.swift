import BYSTNode
import Glibc

// The whole CLI lives in BYSTNode; this target only produces the `byst` binary.
exit(await BYSTCommand.run(Array(CommandLine.arguments.dropFirst())))
