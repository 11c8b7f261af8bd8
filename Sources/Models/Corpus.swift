/// The character-level corpus of the transformer LM: text written for this
/// project (no downloads), tokenized by the sorted set of its characters.
public enum Corpus {
    public static let text = """
    the harness measures how a hessian vector product computed by finite differences drifts away from the \
    truth when the step is too large or too small. a large step adds truncation bias; a small step lets the \
    rounding of two gradients dominate, amplified by one over epsilon. in bfloat16 the perturbed parameters can \
    even round back to the parameters themselves, and then the difference is exactly zero. lanczos iterations \
    built on such products lose orthogonality, and copies of converged eigenvalues appear as ghosts. a careful \
    study varies the step, the scheme and the precision of every stage, compares each result with a reference \
    computed in high precision, and reports where the estimate can be trusted. the same questions apply to the \
    density of the spectrum estimated by stochastic lanczos quadrature: how many steps, how many probes, which \
    reorthogonalization, and which format for the vectors. the answers are tables and a file of safe steps.
    """

    /// Sorted distinct characters.
    public static func vocabulary(_ text: String) -> [Character] { Array(Set(text)).sorted() }

    /// Token ids of `text` under `vocab`.
    public static func tokenize(_ text: String, _ vocab: [Character]) -> [Int] {
        let index = Dictionary(uniqueKeysWithValues: vocab.enumerated().map { ($1, $0) })
        return text.map { index[$0]! }
    }
}
