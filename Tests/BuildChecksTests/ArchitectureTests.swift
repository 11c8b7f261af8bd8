import Foundation
import Testing

/// The layering rules of issue 18 that the compiler does not enforce, read from the
/// sources: no code above Models casts to (or tests for) a concrete model type; it
/// asks the model (`describe()`, `knownEigenvalues`, `peakGradientValues`) or a
/// protocol (`OutputModel`, `KFACModel`) instead. And no code compares a generic
/// scalar type with a concrete one outside the one dispatch point
/// (`Scalars/Specialization.swift`) and `Scalars/Elementary.swift` (binary32's
/// correctly rounded tanh, beside its kernel): a per-type algorithm is a customization
/// point of the scalar protocols (`ComputeScalar`, `BLASScalar`, `FusedFDScalar`).
struct ArchitectureTests {
    static var sources: URL { OutlinedConstantsTests.packageRoot.appendingPathComponent("Sources") }

    static func swiftFiles(in dir: URL) -> [URL] {
        let e = FileManager.default.enumerator(at: dir, includingPropertiesForKeys: nil)
        return (e?.allObjects as? [URL] ?? []).filter { $0.pathExtension == "swift" }.sorted { $0.path < $1.path }
    }

    /// The concrete models: the structs of Models that conform to a model protocol.
    static func concreteModels() throws -> [String] {
        let decl = try NSRegularExpression(pattern: #"public struct (\w+)(<[^>]*>)?\s*:[^{]*\b(DifferentiableModel|OutputModel)\b"#)
        var names: [String] = []
        for f in swiftFiles(in: sources.appendingPathComponent("Models")) {
            let s = try String(contentsOf: f, encoding: .utf8)
            for m in decl.matches(in: s, range: NSRange(s.startIndex..., in: s)) where m.range(at: 2).location == NSNotFound {
                names.append(String(s[Range(m.range(at: 1), in: s)!]))
            }
        }
        return names
    }

    /// Lines of `text` that cast to or test for one of `models`.
    static func casts(in text: String, models: [String]) throws -> [String] {
        let re = try NSRegularExpression(pattern: #"\b(as[?!]?|is)\s+("# + models.joined(separator: "|") + #")\b"#)
        return text.split(separator: "\n").map(String.init).filter { line in
            !line.trimmingCharacters(in: .whitespaces).hasPrefix("//")
                && re.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
        }
    }

    @Test func theModelListIsFound() throws {
        let models = try Self.concreteModels()
        for m in ["MLP", "TransformerLM", "LlamaLM", "QuadraticModel", "ExpSumModel", "ExternalModel"] {
            #expect(models.contains(m), "\(m) not found among \(models)")
        }
    }

    @Test func theCheckSeesACast() throws {
        let models = try Self.concreteModels()
        #expect(try Self.casts(in: "    if let mlp = m as? MLP {", models: models).count == 1)
        #expect(try Self.casts(in: "    let k = KFAC(architecture(of: m) as! TransformerLM, theta: theta)", models: models).count == 1)
        #expect(try Self.casts(in: "    else if architecture(of: m) is LlamaLM { x }", models: models).count == 1)
        #expect(try Self.casts(in: "    let k = (architecture(of: m) as! any KFACModel).kfac(theta: theta)", models: models).isEmpty)
        #expect(try Self.casts(in: "extension MLP: KFACModel {", models: models).isEmpty)
    }

    @Test func noCastToAConcreteModelAboveModels() throws {
        let models = try Self.concreteModels()
        var found: [String] = []
        for dir in try FileManager.default.contentsOfDirectory(atPath: Self.sources.path).sorted()
        where !["Models", "Checkpoints", "Scalars", "LinearAlgebra", "Krylov"].contains(dir) && !dir.hasPrefix("C") {
            for f in Self.swiftFiles(in: Self.sources.appendingPathComponent(dir)) {
                for line in try Self.casts(in: String(contentsOf: f, encoding: .utf8), models: models) {
                    found.append("\(dir)/\(f.lastPathComponent): \(line.trimmingCharacters(in: .whitespaces))")
                }
            }
        }
        #expect(found.isEmpty, "casts to concrete models outside Models:\n\(found.joined(separator: "\n"))")
    }

    /// Lines of `text` that compare a type parameter with a concrete scalar type
    /// (`T.self == Float.self`, `W.self == Dual<Double>.self`, …), a type ladder.
    static func typeLadders(in text: String) throws -> [String] {
        let re = try NSRegularExpression(pattern: #"\b[A-Z]\w*\.self\s*(==|!=)\s*(Float|Double|Float16|BFloat16|Dual|MPFloat|LowPrecisionFloat)\b"#)
        return text.split(separator: "\n").map(String.init).filter { line in
            !line.trimmingCharacters(in: .whitespaces).hasPrefix("//")
                && re.firstMatch(in: line, range: NSRange(line.startIndex..., in: line)) != nil
        }
    }

    @Test func theCheckSeesALadder() throws {
        #expect(try Self.typeLadders(in: "        if T.self == Float.self {").count == 1)
        #expect(try Self.typeLadders(in: "    if W.self == Dual<Double>.self || x { }").count == 1)
        #expect(try Self.typeLadders(in: "    precondition(S.self == T.self, \"why\")").isEmpty)
        #expect(try Self.typeLadders(in: "    if let B = T.self as? any BLASScalar.Type {").isEmpty)
    }

    @Test func noTypeLadderOutsideTheDispatchPoint() throws {
        var found: [String] = []
        for f in Self.swiftFiles(in: Self.sources)
        where !f.path.hasSuffix("Scalars/Specialization.swift") && !f.path.hasSuffix("Scalars/Elementary.swift")
            && !f.path.hasSuffix("LinearAlgebra/BLASSpecialization.swift") {          // the BLAS types' dispatch point
            for line in try Self.typeLadders(in: String(contentsOf: f, encoding: .utf8)) {
                found.append("\(f.deletingLastPathComponent().lastPathComponent)/\(f.lastPathComponent): \(line.trimmingCharacters(in: .whitespaces))")
            }
        }
        #expect(found.isEmpty, "type ladders outside the dispatch point:\n\(found.joined(separator: "\n"))")
    }
}
