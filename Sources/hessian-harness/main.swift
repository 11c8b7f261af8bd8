import Foundation
import HarnessCLI

exit(CLI.run())
