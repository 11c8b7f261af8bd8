import Foundation
import PackagePlugin

/// Embeds the commit the tool is built from, so `manifest.json`'s `git_commit` names the
/// tool's own source and not whatever repository the user runs it in.
///
/// A prebuild command runs on every build: a shell script asks git for the package's
/// HEAD (with `-dirty` when tracked files other than results/ and notebooks-export/
/// differ from it) and rewrites `BuildInfo.swift` only when the text changes, so an
/// unchanged tree recompiles nothing. Without git or outside a checkout (a source
/// tarball) the commit is "unknown".
@main
struct BuildInfoPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) throws -> [Command] {
        let out = context.pluginWorkDirectoryURL.appending(path: "generated")
        let script = #"""
        dir="$1"; out="$2"; mkdir -p "$out"
        c=$(git -C "$dir" rev-parse HEAD 2>/dev/null) || c=unknown
        if [ "$c" != unknown ] && [ -n "$(git -C "$dir" status --porcelain --untracked-files=no -- . ':(exclude)results' ':(exclude)notebooks-export' 2>/dev/null)" ]; then c="$c-dirty"; fi
        printf '// Generated at build time by Plugins/BuildInfo: do not edit.\npublic enum BuildInfo {\n    /// The commit this binary was built from ("-dirty": with uncommitted changes; "unknown": not built from a git checkout).\n    public static let gitCommit = "%s"\n}\n' "$c" > "$out/BuildInfo.swift.new"
        if cmp -s "$out/BuildInfo.swift.new" "$out/BuildInfo.swift"; then rm -f "$out/BuildInfo.swift.new"; else mv "$out/BuildInfo.swift.new" "$out/BuildInfo.swift"; fi
        """#
        return [.prebuildCommand(
            displayName: "Embedding the tool's git commit",
            executable: URL(fileURLWithPath: "/bin/sh"),
            arguments: ["-c", script, "buildinfo", context.package.directoryURL.path, out.path],
            outputFilesDirectory: out)]
    }
}
