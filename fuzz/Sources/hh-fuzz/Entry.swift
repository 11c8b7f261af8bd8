import Foundation
import Harness

/// libFuzzer's entry point: the parser named by `HH_FUZZ_TARGET` (``FuzzTarget``).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    FuzzTarget.current.run(size == 0 ? Data() : Data(bytes: data!, count: size))
    return 0
}

typealias TestOneInput = @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
@_silgen_name("LLVMFuzzerRunDriver")
func runDriver(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
               _ callback: TestOneInput) -> CInt

/// SwiftPM links an executable's entry point as `<target>_main`; libFuzzer's own
/// `main` is replaced by it, so it starts libFuzzer's driver.
@_cdecl("hh_fuzz_main")
public func hhFuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    var c = argc
    var v = argv
    return runDriver(&c, &v) { fuzzOne($0, $1) }
}
