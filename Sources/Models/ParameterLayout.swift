/// A named tensor inside the flat parameter vector.
public struct TensorSpec: Sendable, Equatable, Codable {
    public var name: String
    public var shape: [Int]
    /// Offset of the first element in the flat vector (row-major inside the tensor).
    public var offset: Int
    /// The layer / block the tensor belongs to (for block-diagonal partitions).
    public var block: String
    public var count: Int { shape.reduce(1, *) }
    public var range: Range<Int> { offset..<(offset + count) }
}

/// The flat parameter vector's layout: every tensor with name, shape, offset and
/// block, contiguous and in order.
public struct ParameterLayout: Sendable, Equatable, Codable {
    public private(set) var tensors: [TensorSpec] = []
    public var count: Int { tensors.last.map { $0.offset + $0.count } ?? 0 }

    public init() {}

    public mutating func add(_ name: String, shape: [Int], block: String) {
        tensors.append(TensorSpec(name: name, shape: shape, offset: count, block: block))
    }

    public func tensor(_ name: String) -> TensorSpec? { tensors.first { $0.name == name } }

    /// The blocks in order of first appearance, with their index ranges.
    public var blocks: [(name: String, ranges: [Range<Int>])] {
        var order: [String] = []
        var ranges: [String: [Range<Int>]] = [:]
        for t in tensors {
            if ranges[t.block] == nil { order.append(t.block) }
            ranges[t.block, default: []].append(t.range)
        }
        return order.map { ($0, ranges[$0]!) }
    }
}
