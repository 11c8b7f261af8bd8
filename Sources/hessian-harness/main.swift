import Foundation
import HarnessCLI

CLI.selectBLASKernel()
exit(CLI.run())
