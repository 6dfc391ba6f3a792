import Foundation
import TernFormat

#if canImport(Glibc)
import Glibc
#endif

/// Reads byte ranges of a checkpoint's tensors without touching the memory map: `pread` for raw
/// tensors, checksum-verified zstd chunks decompressed for compressed ones. What it reads goes
/// through the page cache into caller buffers, so it never enters the process's resident set
/// through the map.
final class TensorReader: @unchecked Sendable {
    let file: TernFile
    let fd: Int32
    private var staging: UnsafeMutableRawBufferPointer
    private var decoded: UnsafeMutableRawBufferPointer
    private let lock = NSLock()

    init(file: TernFile) throws {
        self.file = file
        fd = open(file.path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FormatError(file: file.path, field: "open", String(cString: strerror(errno))) }
        staging = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 64)
        decoded = UnsafeMutableRawBufferPointer.allocate(byteCount: 0, alignment: 64)
    }

    deinit {
        close(fd)
        staging.deallocate()
        decoded.deallocate()
    }

    private func ensure(_ buf: inout UnsafeMutableRawBufferPointer, _ n: Int) {
        if buf.count < n {
            buf.deallocate()
            buf = UnsafeMutableRawBufferPointer.allocate(byteCount: n, alignment: 64)
        }
    }

    private func pread(_ dst: UnsafeMutableRawPointer, _ count: Int, at offset: Int) throws {
        var done = 0
        while done < count {
            let n = Glibc.pread(fd, dst + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else {
                throw FormatError(file: file.path, field: "read", n < 0 ? String(cString: strerror(errno)) : "unexpected end of file")
            }
            done += n
        }
    }

    /// Copies decoded bytes [start, start + count) of tensor `t` to `dst`.
    func read(_ t: TensorInfo, from start: Int, count: Int, into dst: UnsafeMutableRawPointer) throws {
        // pread needs no lock; the staging buffers of compressed reads do.
        if t.codec == .raw {
            try pread(dst, count, at: t.offset + start)
            return
        }
        lock.lock()
        defer { lock.unlock() }
        let gb = t.groupBytes
        let end = start + count
        var c = start / gb / t.groupsPerChunk
        while c < t.chunkCount {
            let groups = t.chunkGroups(c)
            let c0 = groups.lowerBound * gb, c1 = groups.upperBound * gb
            if c0 >= end { break }
            // The index entry was validated when the file was opened; read just the compressed bytes.
            let e = file.chunkEntry(t, c)
            ensure(&staging, e.size)
            try pread(staging.baseAddress!, e.size, at: t.offset + e.offset)
            let bytes = UnsafeRawBufferPointer(rebasing: staging[0..<e.size])
            let lo = max(start, c0), hi = min(end, c1)
            if lo == c0 && hi == c1 {
                try file.decodeChunk(t, c, compressed: bytes, into: UnsafeMutableRawBufferPointer(start: dst + (c0 - start), count: c1 - c0))
            } else {
                ensure(&decoded, c1 - c0)
                try file.decodeChunk(t, c, compressed: bytes, into: UnsafeMutableRawBufferPointer(rebasing: decoded[0..<c1 - c0]))
                (dst + (lo - start)).copyMemory(from: decoded.baseAddress! + (lo - c0), byteCount: hi - lo)
            }
            c += 1
        }
    }
}

/// One streamed unit: pieces of tensors placed at offsets in a slot.
struct StreamUnit: Sendable {
    struct Piece: Sendable {
        let tensor: TensorInfo
        let start: Int
        let count: Int
        let slotOffset: Int
    }
    var pieces: [Piece]
}

/// Two slots of streamed weights with a background loader: while the model computes with the
/// unit in one slot, the next unit is read into the other (double buffering). Units are asked
/// for by index; a unit already loading or loaded is waited for or reused, any other is loaded
/// on the spot, so any order works and the usual one (layers, then LM-head chunks, cyclically)
/// overlaps reading with compute.
final class WeightStreamer: @unchecked Sendable {
    enum SlotState: Equatable { case empty, loading(Int), ready(Int), inUse(Int) }

    let reader: TensorReader
    let units: [StreamUnit]
    let slots: [UnsafeMutableRawPointer]
    let slotBytes: Int
    private var state: [SlotState] = [.empty, .empty]
    private var request: (slot: Int, unit: Int)?
    private var failure: Error?
    private var stopping = false
    private let cond = NSCondition()

    init(reader: TensorReader, units: [StreamUnit], slotBytes: Int) {
        self.reader = reader
        self.units = units
        self.slotBytes = slotBytes
        slots = (0..<2).map { _ in UnsafeMutableRawPointer.allocate(byteCount: max(64, slotBytes), alignment: 64) }
        let t = Thread { [self] in self.loader() }
        t.stackSize = 1 << 20
        t.start()
    }

    deinit {
        for s in slots { s.deallocate() }
    }

    /// Stops the loader thread (it holds a reference until then).
    func stop() {
        cond.lock()
        stopping = true
        cond.broadcast()
        cond.unlock()
    }

    private func load(_ u: Int, into slot: Int) throws {
        for p in units[u].pieces {
            try reader.read(p.tensor, from: p.start, count: p.count, into: slots[slot] + p.slotOffset)
        }
    }

    private func loader() {
        cond.lock()
        while true {
            while request == nil && !stopping { cond.wait() }
            if stopping { break }
            let (slot, u) = request!
            request = nil
            cond.unlock()
            var err: Error?
            do { try load(u, into: slot) } catch { err = error }
            cond.lock()
            if let err { failure = err; state[slot] = .empty } else { state[slot] = .ready(u) }
            cond.broadcast()
        }
        cond.unlock()
    }

    /// The slot (index and memory) holding unit `u`, loaded; in use until ``release(slot:)``.
    /// Two sequences may hold the same unit in the two slots at once.
    func acquire(_ u: Int) throws -> (slot: Int, base: UnsafeMutableRawPointer) {
        cond.lock()
        defer { cond.unlock() }
        while true {
            if let f = failure { failure = nil; throw f }
            if let s = state.firstIndex(of: .ready(u)) {
                state[s] = .inUse(u)
                return (s, slots[s])
            }
            if state.contains(.loading(u)) { cond.wait(); continue }
            if let s = state.firstIndex(where: { if case .loading = $0 { return false }; if case .inUse = $0 { return false }; return true }),
               request?.slot != s {
                state[s] = .loading(u)
                cond.unlock()
                var err: Error?
                do { try load(u, into: s) } catch { err = error }
                cond.lock()
                if let err { state[s] = .empty; throw err }
                state[s] = .inUse(u)
                return (s, slots[s])
            }
            cond.wait()
        }
    }

    func release(slot s: Int) {
        cond.lock()
        if case .inUse(let u) = state[s] { state[s] = .ready(u) }
        cond.broadcast()
        cond.unlock()
    }

    /// Asks the loader to bring unit `u` into the free slot, if it is not there already.
    func prefetch(_ u: Int) {
        cond.lock()
        defer { cond.unlock() }
        if state.contains(.ready(u)) || state.contains(.loading(u)) || state.contains(.inUse(u)) || request != nil { return }
        guard let s = state.firstIndex(where: { if case .loading = $0 { return false }; if case .inUse = $0 { return false }; return true }) else { return }
        state[s] = .loading(u)
        request = (s, u)
        cond.broadcast()
    }
}

/// Which weights a model streams (from a ``TernPlanner/Plan``).
public struct WeightPlacement: Sendable {
    public var streamedLayers: Set<Int> = []
    public var streamHead = false
    /// Target decoded bytes per LM-head chunk.
    public var headChunkBytes = 4 << 20

    public init(streamedLayers: Set<Int> = [], streamHead: Bool = false, headChunkBytes: Int = 4 << 20) {
        self.streamedLayers = streamedLayers
        self.streamHead = streamHead
        self.headChunkBytes = headChunkBytes
    }

    public var streamsAnything: Bool { streamHead || !streamedLayers.isEmpty }
}

/// The streamed part of a model: units for the streamed layers (their matrices packed into a
/// slot) and for the LM head in row-group chunks, used cyclically in that order.
final class StreamedWeights: @unchecked Sendable {
    let streamer: WeightStreamer
    /// Unit index and the slot offset of each matrix, for every streamed layer.
    let layerUnits: [Int: (unit: Int, offsets: [Int])]
    /// Unit index and row groups of each LM-head chunk (empty when the head is resident).
    let headUnits: [(unit: Int, groups: Range<Int>)]
    let head: TensorInfo

    /// `layerTensors[l]` are layer l's matrices (in the order the model binds them).
    init(file: TernFile, layerTensors: [[TensorInfo]], head: TensorInfo, placement: WeightPlacement) throws {
        var units: [StreamUnit] = []
        var layerUnits: [Int: (Int, [Int])] = [:]
        for l in layerTensors.indices where placement.streamedLayers.contains(l) {
            var offsets: [Int] = []
            var pieces: [StreamUnit.Piece] = []
            var at = 0
            for t in layerTensors[l] {
                offsets.append(at)
                pieces.append(.init(tensor: t, start: 0, count: t.byteSize, slotOffset: at))
                at = (at + t.byteSize + 63) / 64 * 64
            }
            layerUnits[l] = (units.count, offsets)
            units.append(StreamUnit(pieces: pieces))
        }
        var headUnits: [(Int, Range<Int>)] = []
        if placement.streamHead {
            var groups = max(1, placement.headChunkBytes / head.groupBytes)
            if head.codec == .zstd { groups = max(1, groups / head.groupsPerChunk) * head.groupsPerChunk }
            var g = 0
            while g < head.groups {
                let r = g..<min(head.groups, g + groups)
                headUnits.append((units.count, r))
                units.append(StreamUnit(pieces: [.init(tensor: head, start: r.lowerBound * head.groupBytes,
                                                       count: r.count * head.groupBytes, slotOffset: 0)]))
                g = r.upperBound
            }
        }
        let slotBytes = units.map { u in u.pieces.map { $0.slotOffset + $0.count }.max() ?? 0 }.max() ?? 0
        streamer = WeightStreamer(reader: try TensorReader(file: file), units: units, slotBytes: slotBytes)
        self.layerUnits = layerUnits
        self.headUnits = headUnits
        self.head = head
    }

    deinit { streamer.stop() }

    func next(_ u: Int) -> Int { (u + 1) % streamer.units.count }
}
