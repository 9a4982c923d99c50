// byst-fuzz: every libFuzzer target of BYST in one binary (docs/RELIABILITY.md, "Fuzzing").
//
//   byst-fuzz TARGET [libFuzzer options] [corpus dirs]   run libFuzzer on TARGET
//   byst-fuzz seeds DIR                                  write the seed corpora into DIR/TARGET/
//   byst-fuzz list                                       the target names
import CFuzzDriver
import Glibc

let arguments = CommandLine.arguments
guard arguments.count >= 2 else {
    print("usage: byst-fuzz TARGET [libFuzzer options] | byst-fuzz seeds DIR | byst-fuzz list")
    exit(2)
}
switch arguments[1] {
case "list":
    for target in FuzzTargets.all { print(target.name) }
case "seeds":
    guard arguments.count == 3 else {
        print("usage: byst-fuzz seeds DIR")
        exit(2)
    }
    exit(SeedWriter.write(into: arguments[2]) ? 0 : 1)
default:
    guard FuzzTargets.selected != nil else {
        print("unknown target \(arguments[1]); targets: \(FuzzTargets.all.map(\.name).joined(separator: " "))")
        exit(2)
    }
    // libFuzzer sees the program name and its own options, not the target name.
    var cArguments: [UnsafeMutablePointer<CChar>?] = ([arguments[0]] + arguments.dropFirst(2)).map { strdup($0) } + [nil]
    var argc = CInt(arguments.count - 1)
    let status = cArguments.withUnsafeMutableBufferPointer { buffer in
        var argv = buffer.baseAddress
        return LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            FuzzTargets.selected?.run(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
            return 0
        }
    }
    exit(status)
}
