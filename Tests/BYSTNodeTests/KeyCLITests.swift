import Foundation
import Testing

/// Runs the built `byst` binary as an operator would.
@Suite struct KeyCLITests {
    @Test func genExportImportOnAnotherStoreKeepsTheKeyID() throws {
        try withTemporaryDirectory { dir in
            let hub = dir + "/hub/keys", branch = dir + "/branch/keys"
            #expect(try byst(["key", "gen", "branch-1", "--store", hub]).status == 0)
            #expect(try fileMode(hub) == 0o600)
            let exported = try byst(["key", "export", "branch-1", "--store", hub])
            #expect(exported.status == 0)
            #expect(exported.stdout.hasPrefix("bystk1_"))
            // Import from standard input, as the README recommends.
            let imported = try byst(["key", "import", "hub", "--store", branch], stdin: exported.stdout)
            #expect(imported.status == 0, "\(imported.stderr)")
            #expect(try fileMode(branch) == 0o600)
            let keyID = { (run: CLIRun) in run.stdout.split(separator: "\n").first { $0.hasPrefix("key id:") } }
            let hubShow = try byst(["key", "show", "branch-1", "--store", hub])
            let branchShow = try byst(["key", "show", "hub", "--store", branch])
            #expect(keyID(hubShow) != nil)
            #expect(keyID(hubShow) == keyID(branchShow))
            #expect(hubShow.stdout.contains("(hidden)"))
            #expect(!hubShow.stdout.contains(exported.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
            let withSecret = try byst(["key", "show", "branch-1", "--secret", "--store", hub])
            #expect(withSecret.stdout.contains(exported.stdout.trimmingCharacters(in: .whitespacesAndNewlines)))
            let list = try byst(["key", "list", "--store", hub])
            #expect(list.stdout.contains("branch-1"))
            #expect(try byst(["key", "rm", "branch-1", "--store", hub]).status == 0)
            #expect(!(try byst(["key", "list", "--store", hub]).stdout.contains("branch-1")))
        }
    }

    @Test func badInputGivesOneLineErrorAndNonZeroExit() throws {
        try withTemporaryDirectory { dir in
            let store = dir + "/keys"
            let cases: [[String]] = [
                ["frobnicate"],
                ["key", "show", "nobody", "--store", store],
                ["key", "import", "x", "bystk1_tooShort", "--store", store],
                ["key", "import", "x", "not-a-key", "--store", store],
                ["key", "gen", "bad/name", "--store", store],
                ["key", "gen"],
            ]
            for arguments in cases {
                let run = try byst(arguments)
                // A key given as an argument was visible to others whatever it holds: warned first.
                let warned = arguments.starts(with: ["key", "import"])
                let lines = run.stderr.split(separator: "\n")
                #expect(run.status != 0, "\(arguments)")
                #expect(lines.last?.hasPrefix("byst: error: ") == true, "\(arguments): \(run.stderr)")
                #expect(lines.count == (warned ? 2 : 1), "\(arguments): \(run.stderr)")
                #expect(!warned || lines.first?.hasPrefix("warning: a key on the command line is visible to other local users") == true)
                #expect(run.stdout.isEmpty, "\(arguments)")
            }
            // A world-readable store is refused with a clear message.
            #expect(try byst(["key", "gen", "a", "--store", store]).status == 0)
            chmod(store, 0o644)
            let refused = try byst(["key", "list", "--store", store])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("chmod 600"))
        }
    }
}
