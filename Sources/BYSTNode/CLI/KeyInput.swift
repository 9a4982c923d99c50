import BYSTProto
import Glibc

/// A secret string read from standard input: the `bystk1_…` key of `byst key import`, the
/// `bystinv1_…` line of `byst join`. On a terminal it prompts on stderr and turns echo off
/// while the secret is typed or pasted (restored on return and on SIGINT/SIGTERM/SIGHUP). A
/// paste wrapped over several lines is joined: lines (whitespace removed) are read until the
/// string decodes, an empty line, or end of input.
enum KeyInput {
    static func readStandardInput() -> String {
        readStandardInput(what: "the \(KeyExport.prefix)… string", decodes: decodes)
    }

    /// `what` names the string in the prompt; `decodes` says when a wrapped paste is complete.
    static func readStandardInput(what: String, decodes: (String) -> Bool) -> String {
        guard isatty(0) == 1 else { return join(next: { readLine(strippingNewline: true) }, decodes: decodes) }
        // Echo off before the prompt: nothing typed after the prompt is ever shown.
        let echoWasOff = TerminalEcho.disable()
        writeStandardError("paste \(what), then Enter (it is not shown): ")
        defer {
            if !echoWasOff { TerminalEcho.restore() }
            writeStandardError("\n")
        }
        return join(next: { readLine(strippingNewline: true) }, decodes: decodes)
    }

    static func decodes(_ text: String) -> Bool {
        do { _ = try KeyExport.decode(text) } catch { return false }
        return true
    }

    /// Lines from `next`, whitespace removed, joined until `decodes` accepts them, an empty
    /// line, or the end; what was read (possibly empty).
    static func join(next: () -> String?, decodes: (String) -> Bool) -> String {
        var text = ""
        while let line = next() {
            let piece = line.filter { !$0.isWhitespace }
            guard !piece.isEmpty else { break }
            text += piece
            if decodes(text) { break }
        }
        return text
    }
}

/// Echo off on standard input's terminal, and back as it was.
enum TerminalEcho {
    nonisolated(unsafe) private static var saved = termios()

    /// Turns echo off; returns whether it already was (then nothing is to be restored).
    static func disable() -> Bool {
        guard tcgetattr(0, &saved) == 0 else { return true }
        guard saved.c_lflag & tcflag_t(ECHO) != 0 else { return true }
        var quiet = saved
        quiet.c_lflag &= ~tcflag_t(ECHO)
        for number in [SIGINT, SIGTERM, SIGHUP] {
            signal(number) { number in
                tcsetattr(0, TCSANOW, &TerminalEcho.saved)
                signal(number, SIG_DFL)
                raise(number)
            }
        }
        tcsetattr(0, TCSAFLUSH, &quiet)
        return false
    }

    static func restore() {
        tcsetattr(0, TCSANOW, &saved)
        for number in [SIGINT, SIGTERM, SIGHUP] { signal(number, SIG_DFL) }
    }
}
