import CKernels
import Foundation

/// SHA-256 (FIPS 180-4), for the experiment file's digest in the manifest.
///
/// Written by hand on purpose: the only packaged implementation available here is
/// swift-crypto, which would add about a minute to every clean build. It also hashes the
/// manifest's output files, gigabytes for a real model's `hvp` arrays, so it reads the
/// data in place and compresses it in C (`hh_sha256_blocks`: the x86 SHA extensions where
/// the CPU has them; the Swift loop it replaced ran ~150 MB/s, 20 s of an `hvp` of
/// SmolLM2). Checked against the FIPS 180-4 example vectors and against coreutils
/// `sha256sum` at every length from 0 to 130 bytes (each padding case) and on a few
/// megabytes, with each compression function, in the tests.
public enum SHA256 {
    /// The compression function over whole 64-byte blocks: CKernels' `hh_sha256_blocks`
    /// (the x86 SHA extensions when the CPU has them, else plain C).
    public typealias Blocks = (UnsafeMutablePointer<UInt32>, UnsafePointer<UInt8>, Int) -> Void

    /// The digest of `data`, the blocks compressed by `blocks` (the default picks the
    /// CPU's fastest; tests pass `hh_sha256_blocks_portable` to check the other).
    public static func digest(_ data: Data, blocks: Blocks = { hh_sha256_blocks($0, $1, $2) }) -> [UInt8] {
        var h: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]
        // The message is read in place (no copy: the arrays `hvp` hashes are gigabytes);
        // only the tail and its padding are assembled, in one or two blocks.
        data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            h.withUnsafeMutableBufferPointer { hp in
                let n = raw.count, full = n / 64
                if let base = raw.baseAddress, full > 0 { blocks(hp.baseAddress!, base.assumingMemoryBound(to: UInt8.self), full) }
                var tail = [UInt8](repeating: 0, count: 128)
                let rest = n - 64 * full
                for i in 0..<rest { tail[i] = raw[64 * full + i] }
                tail[rest] = 0x80
                let count = rest < 56 ? 1 : 2
                let bits = UInt64(n) &* 8
                for i in 0..<8 { tail[64 * count - 1 - i] = UInt8(truncatingIfNeeded: bits >> (8 * UInt64(i))) }
                tail.withUnsafeBufferPointer { tp in blocks(hp.baseAddress!, tp.baseAddress!, count) }
            }
        }
        return h.flatMap { x in (0..<4).map { UInt8(truncatingIfNeeded: x >> (24 - 8 * UInt32($0))) } }
    }

    public static func hex(_ data: Data, blocks: Blocks = { hh_sha256_blocks($0, $1, $2) }) -> String {
        digest(data, blocks: blocks).map { String($0, radix: 16).leftPadded(2) }.joined()
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
