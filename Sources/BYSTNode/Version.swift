public enum BYSTNodeVersion { public static let string = "0.1.0" }
