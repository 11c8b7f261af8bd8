import Foundation

/// The weak data objects of ELF64 relocatable object files (x86-64 and AArch64, little
/// endian), with what each one holds: its bytes and its relocations, each relocation's
/// target resolved to a symbol name or, for a target in a local section (a string
/// literal, an unnamed constant), to the bytes it points at.
///
/// Written by hand because no Swift package reads ELF symbol and relocation tables, and
/// the check must not depend on binutils being installed. Only what the check needs:
/// section headers, `SHT_SYMTAB`, `SHT_RELA`; malformed input is an error, never a trap.
struct ELFWeakConstants {
    struct Relocation: Hashable {
        var offset: Int           // within the object
        var type: UInt32
        var target: Target
        var addend: Int64         // 0 when the target was resolved to bytes (they carry the offset)
    }
    enum Target: Hashable {
        case symbol(String)
        case bytes([UInt8])
    }
    struct Constant: Hashable {
        var bytes: [UInt8]
        var relocations: [Relocation]
    }

    struct Malformed: Error, CustomStringConvertible {
        var path: String, reason: String
        var description: String { "\(path): not a readable ELF64 object (\(reason))" }
    }

    /// Weak (`STB_WEAK`) defined objects (`STT_OBJECT`) by name.
    static func read(_ path: String) throws -> [String: Constant] {
        let b = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
        func fail(_ r: String) -> Malformed { Malformed(path: path, reason: r) }
        guard b.count >= 64, b[0] == 0x7F, b[1] == 0x45, b[2] == 0x4C, b[3] == 0x46 else { throw fail("no ELF magic") }
        guard b[4] == 2, b[5] == 1 else { throw fail("not ELF64 little-endian") }
        func u(_ o: Int, _ n: Int) throws -> UInt64 {
            guard o >= 0, n <= 8, o <= b.count - n else { throw fail("read of \(n) bytes at \(o) outside the file") }
            var x: UInt64 = 0
            for i in (0..<n).reversed() { x = x << 8 | UInt64(b[o + i]) }
            return x
        }
        func int(_ o: Int, _ n: Int) throws -> Int {
            let x = try u(o, n)
            guard x <= UInt64(Int.max) else { throw fail("value out of range at \(o)") }
            return Int(x)
        }
        struct Section { var type: UInt32; var offset: Int; var size: Int; var link: Int; var info: Int }
        let shoff = try int(0x28, 8), shentsize = try int(0x3A, 2), shnum = try int(0x3C, 2)
        guard shentsize == 64, shnum < 1 << 16 else { throw fail("unexpected section header size") }
        var sections: [Section] = []
        for i in 0..<shnum {
            let o = shoff + i * 64
            let s = Section(type: UInt32(try u(o + 4, 4)), offset: try int(o + 0x18, 8), size: try int(o + 0x20, 8),
                            link: try int(o + 0x28, 4), info: try int(o + 0x2C, 4))
            let nobits = s.type == 8
            guard nobits || (s.offset <= b.count && s.size <= b.count - s.offset) else { throw fail("section \(i) outside the file") }
            sections.append(s)
        }
        func cString(_ o: Int, limit: Int) -> [UInt8] {
            var e = o
            while e < b.count, e < o + limit, b[e] != 0 { e += 1 }
            return Array(b[o..<e])
        }
        struct Symbol { var name: String; var info: UInt8; var section: Int; var value: Int; var size: Int }
        var result: [String: Constant] = [:]
        for (si, symtab) in sections.enumerated() where symtab.type == 2 {
            guard symtab.link < sections.count else { throw fail("symbol table without strings") }
            let strtab = sections[symtab.link]
            var symbols: [Symbol] = []
            for j in 0..<(symtab.size / 24) {
                let o = symtab.offset + j * 24
                let nameOffset = try int(o, 4)
                guard nameOffset < strtab.size else { throw fail("symbol name outside its table") }
                symbols.append(Symbol(name: String(decoding: cString(strtab.offset + nameOffset, limit: strtab.size - nameOffset), as: UTF8.self),
                                      info: b[o + 4], section: try int(o + 6, 2), value: try int(o + 8, 8), size: try int(o + 16, 8)))
            }
            func defined(_ s: Symbol) -> Bool { s.section > 0 && s.section < 0xFF00 && s.section < sections.count }
            // A target in a local symbol or section is what it points at (NUL-terminated,
            // at most 256 bytes): the same string literal sits at different offsets of
            // different objects. An addend beyond the section is an encoding (Swift
            // string objects add 2⁶³ − 32) and stays part of the relocation.
            func target(_ k: Int, _ addend: Int64) -> (Target, Int64) {
                guard k < symbols.count else { return (.symbol("#\(k)"), addend) }
                let s = symbols[k]
                guard s.info >> 4 == 0, defined(s) else { return (.symbol(s.name), addend) }
                let sec = sections[s.section]
                let inSection = addend > -4096 && addend < Int64(sec.size)
                let o = s.value + (inSection ? Int(addend) : 0)
                guard sec.type != 8, o >= 0, o < sec.size else { return (.symbol(s.name.isEmpty ? "section \(s.section)" : s.name), addend) }
                return (.bytes(cString(sec.offset + o, limit: min(256, sec.size - o))), inSection ? 0 : addend)
            }
            var relocations: [Int: [(offset: Int, type: UInt32, sym: Int, addend: Int64)]] = [:]
            for rs in sections where rs.type == 4 && rs.link == si {
                for j in 0..<(rs.size / 24) {
                    let o = rs.offset + j * 24
                    let info = try u(o + 8, 8)
                    relocations[rs.info, default: []].append((try int(o, 8), UInt32(truncatingIfNeeded: info), Int(info >> 32),
                                                             Int64(bitPattern: try u(o + 16, 8))))
                }
            }
            for s in symbols where s.info >> 4 == 2 && s.info & 0xF == 1 && defined(s) {
                let sec = sections[s.section]
                guard s.value <= sec.size else { throw fail("symbol \(s.name) outside its section") }
                // A Swift type-metadata address point (`…N`) is an alias 16 bytes into its full
                // metadata object (`…Mf`) and carries the full object's size, so it can run past
                // the section's end when that object is the section's last (a local struct's
                // metadata in Studies' Scaling.swift.o): read up to the end.
                let size = min(s.size, sec.size - s.value)
                let bytes = sec.type == 8 ? [UInt8](repeating: 0, count: size) : Array(b[(sec.offset + s.value)..<(sec.offset + s.value + size)])
                let relocs = (relocations[s.section] ?? []).filter { $0.offset >= s.value && $0.offset < s.value + size }
                    .map { r -> Relocation in
                        let (t, a) = target(r.sym, r.addend)
                        return Relocation(offset: r.offset - s.value, type: r.type, target: t, addend: a)
                    }
                    .sorted { $0.offset < $1.offset }
                result[s.name] = Constant(bytes: bytes, relocations: relocs)
            }
        }
        return result
    }

    /// Names of weak objects matching `include` defined by two or more of the objects
    /// with different contents, each with the files that define it.
    static func conflicts(in paths: [String], include: (String) -> Bool) throws -> [(name: String, files: [String])] {
        var definitions: [String: [(file: String, constant: Constant)]] = [:]
        for p in paths {
            for (name, c) in try read(p) where include(name) { definitions[name, default: []].append((p, c)) }
        }
        return definitions.filter { Set($0.value.map(\.constant)).count > 1 }
            .map { (name: $0.key, files: $0.value.map(\.file)) }
            .sorted { $0.name < $1.name }
    }

    /// Whether a symbol is one of the Swift optimizer's outlined constant objects: the
    /// mangled name of the function it was outlined from, then `Tv_`, `Tv0_`, `Tv1_`, ….
    static func isOutlinedConstant(_ name: String) -> Bool {
        guard name.hasSuffix("_"), let r = name.range(of: "Tv", options: .backwards) else { return false }
        return name[r.upperBound...].dropLast().allSatisfy(\.isNumber)
    }
}
