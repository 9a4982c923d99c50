import Foundation
import Glibc
import Testing
@testable import BYSTNode

/// `byst key import` reading the string from standard input (issue 25 point 6).
@Suite struct KeyImportInputTests {
    @Test func aLineWrappedPasteIsJoined() throws {
        try withTemporaryDirectory { dir in
            #expect(try byst(["key", "gen", "hub", "--store", dir + "/a"]).status == 0)
            let exported = try byst(["key", "export", "hub", "--store", dir + "/a"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            // Wrapped at 20 columns by a mail client or terminal, with stray spaces.
            var wrapped = ""
            var rest = Substring(exported)
            while !rest.isEmpty {
                wrapped += "  " + rest.prefix(20) + " \n"
                rest = rest.dropFirst(20)
            }
            let run = try byst(["key", "import", "hub", "--store", dir + "/b"], stdin: wrapped + "trailing text is not read\n")
            #expect(run.status == 0, "\(run.stderr)")
            let keyID = { (store: String) in try byst(["key", "show", "hub", "--store", dir + store]).stdout }
            #expect(try keyID("/a") == keyID("/b"))
        }
    }

    @Test func joinStopsAtAnEmptyLineOrWhenTheStringDecodes() {
        var lines = ["bystk1_ab", " cd ", "", "ef"][...]
        #expect(KeyInput.join(next: { lines.popFirst() }, decodes: { _ in false }) == "bystk1_abcd")
        lines = ["bystk1_ab", "cd", "ef"][...]
        #expect(KeyInput.join(next: { lines.popFirst() }, decodes: { $0.hasSuffix("cd") }) == "bystk1_abcd")
        #expect(lines.first == "ef")
    }

    /// On a terminal: a prompt on stderr, the secret not echoed, echo back on afterwards.
    @Test func onATerminalItPromptsAndDoesNotEcho() throws {
        // Glibc's module hides the pty functions (they need _XOPEN_SOURCE): found at run time.
        func function<T>(_ name: String, _: T.Type) throws -> T {
            unsafeBitCast(try #require(dlsym(UnsafeMutableRawPointer(bitPattern: 0), name)), to: T.self)
        }
        let openpt = try function("posix_openpt", (@convention(c) (Int32) -> Int32).self)
        let grantpt = try function("grantpt", (@convention(c) (Int32) -> Int32).self)
        let unlockpt = try function("unlockpt", (@convention(c) (Int32) -> Int32).self)
        let ptsname = try function("ptsname", (@convention(c) (Int32) -> UnsafeMutablePointer<CChar>?).self)
        let master = openpt(O_RDWR | O_NOCTTY)
        try #require(master >= 0 && grantpt(master) == 0 && unlockpt(master) == 0)
        defer { close(master) }
        let slavePath = String(cString: try #require(ptsname(master)))
        let slave = open(slavePath, O_RDWR | O_NOCTTY)
        try #require(slave >= 0)
        defer { close(slave) }
        try withTemporaryDirectory { dir in
            #expect(try byst(["key", "gen", "hub", "--store", dir + "/a"]).status == 0)
            let exported = try byst(["key", "export", "hub", "--store", dir + "/a"]).stdout.trimmingCharacters(in: .whitespacesAndNewlines)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: try bystBinary())
            process.arguments = ["key", "import", "hub", "--store", dir + "/b"]
            process.standardInput = FileHandle(fileDescriptor: slave, closeOnDealloc: false)
            let err = Pipe(), out = Pipe()
            process.standardError = err
            process.standardOutput = out
            try process.run()
            // Wait for the prompt: echo is off by then.
            var prompt = Data()
            while !String(decoding: prompt, as: UTF8.self).contains("then Enter") {
                let chunk = err.fileHandleForReading.availableData
                if chunk.isEmpty { break }
                prompt += chunk
            }
            #expect(String(decoding: prompt, as: UTF8.self).hasPrefix("paste the bystk1_… string, then Enter"))
            let half = exported.count / 2
            let typed = String(exported.prefix(half)) + "\n" + String(exported.dropFirst(half)) + "\n"
            _ = typed.withCString { write(master, $0, strlen($0)) }
            process.waitUntilExit()
            #expect(process.terminationStatus == 0, "\(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))")
            // What the terminal shows: no part of the secret.
            var shown = [UInt8](repeating: 0, count: 4096)
            let flags = fcntl(master, F_GETFL)
            _ = fcntl(master, F_SETFL, flags | O_NONBLOCK)
            let n = read(master, &shown, shown.count)
            let screen = n > 0 ? String(decoding: shown[0..<n], as: UTF8.self) : ""
            #expect(!screen.contains(String(exported.prefix(half).dropFirst(7))), "echoed: \(screen)")
            var settings = termios()
            #expect(tcgetattr(slave, &settings) == 0)
            #expect(settings.c_lflag & tcflag_t(ECHO) != 0, "echo was not restored")
            let keyID = { (store: String) in try byst(["key", "show", "hub", "--store", dir + store]).stdout }
            #expect(try keyID("/a") == keyID("/b"))
        }
    }
}
