import Foundation
import TernFormat
import TernPlanner

/// How streamed weights reach the kernels.
///
/// - `map`: raw tensors are used in place from the memory map, a unit at a time, and its folios
///   are dropped from the resident set right after the unit's product (``MappedUnits``). A
///   streamed byte then crosses memory once, as a resident one does; the cost is a page fault
///   per 2 MiB folio and the drop.
/// - `copy`: `pread` (or zstd decoding) into the slots of a ``WeightStreamer``, loaded ahead on
///   background threads. The copy writes every byte and reads it again, which bound streamed
///   decoding at the copy's speed (Qwen2.5-Coder-1.5B under 256 MiB, 2 threads, AVX2: 8-11 t/s
///   copied against 19-26 in place; bench/README.md "Streaming in place").
///
/// `map` needs Linux (dropping a file mapping's pages with `MADV_DONTNEED`), raw tensors (zstd
/// tensors are decoded, so always copied) and 2 MiB folios at most (``MappedFile/folioBytes``):
/// with 16 KiB pages (Raspberry Pi 5 kernels) a fault may map a 32 MiB folio, which small
/// budgets cannot hold per unit, so those kernels copy. `TERN_STREAM=copy` picks `copy` for
/// comparisons.
public enum StreamReads: String, Sendable {
    case map, copy

    /// What a checkpoint whose streamable matrices are `matrices` streams by.
    public static func choose(file: TernFile, matrices: [TensorInfo]) -> StreamReads {
        #if os(Linux)
        if ProcessInfo.processInfo.environment["TERN_STREAM"] == "copy" { return .copy }
        let small = MappedFile.folioBytes == Planner.mappedFolioBytes
        return small && file.map.isFileMapping && matrices.allSatisfy({ $0.codec == .raw }) ? .map : .copy
        #else
        return .copy
        #endif
    }
}

/// Streamed units used in place from the checkpoint's memory map: the kernels read a unit's
/// pieces where they lie in the file (faulting in their folios, the page cache's 2 MiB pages),
/// and the folios are dropped from the resident set after (``MappedWindow``). A sequence never
/// holds more than the largest unit's folios (``limit``), so the plan holds one unit's folios
/// (``footprint(_:of:)``) where copying holds a unit per slot. No threads, locks or slots: the
/// kernel's readahead fills the page cache when the file is not cached.
final class MappedUnits: @unchecked Sendable {
    let map: MappedFile
    /// For every unit, the address of each piece (in the unit's piece order).
    private let addresses: [[UnsafeRawPointer]]
    /// For every unit, the folio-aligned file ranges it maps (merged, in order), and their bytes.
    private let folios: [[Range<Int>]]
    private let footprints: [Int]
    /// The most a sequence holds mapped: the largest unit's folios.
    let limit: Int

    init(map: MappedFile, units: [StreamUnit]) {
        self.map = map
        let base = map.bytes.baseAddress!
        addresses = units.map { u in u.pieces.map { UnsafeRawPointer(base + $0.tensor.offset + $0.start) } }
        folios = units.map { u in MappedUnits.folios(u.pieces.map(MappedUnits.fileRange), of: map) }
        footprints = folios.map { $0.reduce(0) { $0 + $1.count } }
        limit = footprints.max() ?? 0
        // 2 MiB page-table entries: a fault maps a folio with one entry, and the drop clears one.
        for d in folios.joined() { map.useHugePages(d) }
    }

    func address(unit u: Int, piece k: Int) -> UnsafeRawPointer { addresses[u][k] }

    /// Makes room for unit `u` in `window` (dropping what it holds if `u` would take it past
    /// ``limit``), runs `body`, and leaves `u`'s folios in the window.
    func use(_ u: Int, window w: inout MappedWindow, _ body: () -> Void) {
        if w.bytes + footprints[u] > limit { w.flush() }
        body()
        w.hold(folios[u], of: map)
    }

    static func fileRange(_ p: StreamUnit.Piece) -> Range<Int> {
        p.tensor.offset + p.start..<p.tensor.offset + p.start + p.count
    }

    /// Overlapping or touching ranges joined, in order (set-up only: allocates).
    static func merged(_ ranges: [Range<Int>]) -> [Range<Int>] {
        var out: [Range<Int>] = []
        for r in ranges.sorted(by: { $0.lowerBound < $1.lowerBound }) where !r.isEmpty {
            if let last = out.last, r.lowerBound <= last.upperBound {
                out[out.count - 1] = last.lowerBound..<max(last.upperBound, r.upperBound)
            } else {
                out.append(r)
            }
        }
        return out
    }

    /// The folios (merged, in order) a unit of pieces at file ranges `ranges` of `map` maps while in use.
    static func folios(_ ranges: [Range<Int>], of map: MappedFile) -> [Range<Int>] {
        merged(ranges.map(map.folioRange))
    }

    /// Bytes of ``folios(_:of:)``.
    static func footprint(_ ranges: [Range<Int>], of map: MappedFile) -> Int {
        folios(ranges, of: map).reduce(0) { $0 + $1.count }
    }
}

/// Folios one sequence's in-place units left mapped, dropped together once they and the next
/// unit would outgrow ``MappedUnits/limit``. Consecutive units usually share a folio (units are
/// cut by bytes, folios by 2 MiB), which is then faulted in once rather than per unit; and small
/// units (SmolLM2's dispatch sets are 0.2-1.5 MB) share one drop, one `madvise` and one TLB
/// shootdown. Allocation-free once `ranges` has grown to its working size.
struct MappedWindow {
    private var map: MappedFile?
    private var ranges: [Range<Int>] = []
    /// Bytes of the held ranges (overlaps counted once).
    private(set) var bytes = 0

    /// Adds folio-aligned `folios` of `map` (in file order), joined to the last range they touch.
    mutating func hold(_ folios: [Range<Int>], of map: MappedFile) {
        if self.map !== map { flush() }
        self.map = map
        for r in folios {
            if let last = ranges.last, r.lowerBound <= last.upperBound, r.upperBound >= last.lowerBound {
                bytes += max(0, r.upperBound - last.upperBound) + max(0, last.lowerBound - r.lowerBound)
                ranges[ranges.count - 1] = min(last.lowerBound, r.lowerBound)..<max(last.upperBound, r.upperBound)
            } else {
                bytes += r.count
                ranges.append(r)
            }
        }
    }

    /// Drops every held folio from the resident set.
    mutating func flush() {
        if let map { for r in ranges { map.unmapFolios(r) } }
        ranges.removeAll(keepingCapacity: true)
        bytes = 0
    }
}
