@testable import BYSTNode

extension NodeConfig {
    /// The one-line error `text` is refused with, or nil if it parses.
    static func parseError(_ text: String, file: String) -> String? {
        do throws(ConfigError) {
            _ = try parse(text, file: file)
            return nil
        } catch {
            return error.description
        }
    }
}
