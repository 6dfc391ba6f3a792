import Foundation
import TernFormat
import TernKernels
import TernPlanner

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
                throw FormatError(file: file.path, field: "read",
                                  n < 0 ? String(cString: strerror(errno)) : "unexpected end of file")
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
                try file.decodeChunk(t, c, compressed: bytes,
                                     into: UnsafeMutableRawBufferPointer(start: dst + (c0 - start), count: c1 - c0))
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

/// Slots of streamed weights filled by background loader threads: while the model computes with
/// the unit in one slot, the next units are read into the others. Units are asked for by index;
/// a unit already loading or loaded is waited for or reused, any other is loaded on the spot, so
/// any order works and the usual one (layers, then LM-head chunks, cyclically) overlaps reading
/// with compute. Copying from the page cache costs more CPU than the kernels' pass over the copy
/// (it writes every byte too), so one loader could not keep up with a 2-core decode: loading
/// ``prefetchDepth`` units ahead on as many threads keeps both cores busy.
final class WeightStreamer: @unchecked Sendable {
    enum SlotState: Equatable { case empty, loading(Int), ready(Int), inUse(Int) }

    /// Slots (``TernPlanner/Planner/streamSlots``, which the plan budgets for) and the units
    /// loaded ahead of the one in use, each by its own loader thread.
    static let slotCount = Planner.streamSlots
    static let prefetchDepth = slotCount - 1

    let reader: TensorReader
    let units: [StreamUnit]
    let slots: [UnsafeMutableRawPointer]
    let slotBytes: Int
    private var state: [SlotState]
    /// Loads asked for and not yet taken by a loader, oldest first.
    private var requests: [(slot: Int, unit: Int)] = []
    private var failure: Error?
    private var stopping = false
    /// One lock over the state and two conditions, so that a wake-up reaches only threads that
    /// can act on it: `work` wakes loaders (a request, or stopping), `changed` wakes callers of
    /// ``acquire(_:)`` waiting for a slot's state, and only when one is (`waiting`). One
    /// condition broadcast for both woke the idle loaders at every release and every finished
    /// load, to find nothing and sleep again: SmolLM2 under 80M spent ~30% of its CPU time in
    /// futex wake-ups and task switches (`perf record`, 2 threads).
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let work = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let changed = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var waiting = 0

    init(reader: TensorReader, units: [StreamUnit], slotBytes: Int) {
        self.reader = reader
        self.units = units
        self.slotBytes = slotBytes
        slots = (0..<WeightStreamer.slotCount).map { _ in allocateHugePages(byteCount: slotBytes) }
        state = Array(repeating: .empty, count: WeightStreamer.slotCount)
        requests.reserveCapacity(WeightStreamer.slotCount)
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(work, nil)
        pthread_cond_init(changed, nil)
        for _ in 0..<WeightStreamer.prefetchDepth {
            let t = Thread { [self] in self.loader() }
            t.stackSize = 1 << 20
            t.start()
        }
    }

    deinit {
        for s in slots { s.deallocate() }
        pthread_cond_destroy(changed)
        pthread_cond_destroy(work)
        pthread_mutex_destroy(mutex)
        changed.deallocate()
        work.deallocate()
        mutex.deallocate()
    }

    private func lock() { pthread_mutex_lock(mutex) }
    private func unlock() { pthread_mutex_unlock(mutex) }

    /// Waits (the lock held) until a slot's state changes or a load fails.
    private func waitForChange() {
        waiting += 1
        pthread_cond_wait(changed, mutex)
        waiting -= 1
    }

    /// Wakes the callers of ``acquire(_:)`` that wait (the lock held).
    private func announceChange() {
        if waiting > 0 { pthread_cond_broadcast(changed) }
    }

    /// Stops the loader threads (they hold references until then).
    func stop() {
        lock()
        stopping = true
        pthread_cond_broadcast(work)
        unlock()
    }

    private func load(_ u: Int, into slot: Int) throws {
        for p in units[u].pieces {
            try reader.read(p.tensor, from: p.start, count: p.count, into: slots[slot] + p.slotOffset)
        }
    }

    private func loader() {
        lock()
        while true {
            while requests.isEmpty && !stopping { pthread_cond_wait(work, mutex) }
            if stopping { break }
            let (slot, u) = requests.removeFirst()
            unlock()
            var err: Error?
            do { try load(u, into: slot) } catch { err = error }
            lock()
            if let err { failure = err; state[slot] = .empty } else { state[slot] = .ready(u) }
            announceChange()
        }
        unlock()
    }

    /// A slot that may be (re)filled: empty, or holding a loaded unit nobody uses that is neither
    /// `a` nor `b` (the units about to be used). A requested slot is `.loading` already.
    private func freeSlot(keep a: Int, _ b: Int) -> Int? {
        state.indices.first { i in
            switch state[i] {
            case .empty: return true
            case .ready(let v): return v != a && v != b
            case .loading, .inUse: return false
            }
        }
    }

    /// The slot (index and memory) holding unit `u`, loaded; in use until ``release(slot:)``.
    /// Several sequences may hold the same unit in different slots at once.
    func acquire(_ u: Int) throws -> (slot: Int, base: UnsafeMutableRawPointer) {
        lock()
        defer { unlock() }
        while true {
            if let f = failure { failure = nil; throw f }
            if let s = state.firstIndex(of: .ready(u)) {
                state[s] = .inUse(u)
                return (s, slots[s])
            }
            if state.contains(.loading(u)) { waitForChange(); continue }
            if let s = freeSlot(keep: next(u), -1) {
                state[s] = .loading(u)
                unlock()
                var err: Error?
                do { try load(u, into: s) } catch { err = error }
                lock()
                if let err { state[s] = .empty; announceChange(); throw err }
                state[s] = .inUse(u)
                return (s, slots[s])
            }
            waitForChange()
        }
    }

    func release(slot s: Int) {
        lock()
        if case .inUse(let u) = state[s] { state[s] = .ready(u) }
        announceChange()
        unlock()
    }

    private func next(_ u: Int) -> Int { (u + 1) % units.count }

    /// Asks the loaders to bring the `prefetchDepth` units after `u` (cyclically) into free slots,
    /// those not there or on their way already. Allocation-free: `requests` keeps its capacity.
    func prefetch(after u: Int) {
        lock()
        defer { unlock() }
        var v = u
        for _ in 0..<WeightStreamer.prefetchDepth {
            v = next(v)
            if v == u { return }
            if state.contains(.ready(v)) || state.contains(.loading(v)) || state.contains(.inUse(v)) { continue }
            guard let s = freeSlot(keep: next(u), next(next(u))) else { return }
            state[s] = .loading(v)
            requests.append((s, v))
            pthread_cond_signal(work)
        }
    }
}

/// Which weights a model streams (from a ``TernPlanner/Plan``).
public struct WeightPlacement: Sendable {
    public var streamedLayers: Set<Int> = []
    public var streamHead = false
    /// Target decoded bytes per LM-head chunk.
    public var headChunkBytes = Planner.headChunkTarget
    /// Target bytes per chunk of a streamed layer's matrices (``LayerChunks``).
    public var layerChunkBytes = Planner.layerChunkTarget
    /// How the streamed units are read (``StreamReads``); `map` falls back to `copy` for zstd tensors.
    public var reads = StreamReads.copy

    public init(streamedLayers: Set<Int> = [], streamHead: Bool = false, headChunkBytes: Int = Planner.headChunkTarget,
                layerChunkBytes: Int = Planner.layerChunkTarget, reads: StreamReads = .copy) {
        self.streamedLayers = streamedLayers
        self.streamHead = streamHead
        self.headChunkBytes = headChunkBytes
        self.layerChunkBytes = layerChunkBytes
        self.reads = reads
    }

    public var streamsAnything: Bool { streamHead || !streamedLayers.isEmpty }
}

/// How a streamed layer is read: each dispatch set of its matrices (``DecoderLayer/dispatchSets``:
/// Q/K/V, O, gate/up, down) cut into runs of whole row groups of about `target` bytes, in order,
/// each one streaming unit. The kernels then read a chunk right after the loader copied it, while
/// it is still in the cache. Compressed layers stream a whole set per unit (their zstd chunks
/// would otherwise be decoded more than once).
public enum LayerChunks {
    /// One matrix's share of a chunk: the matrix's index in its set, its row groups, and where
    /// they sit in the slot.
    public struct Piece: Sendable, Equatable {
        public let matrix: Int
        public let groups: Range<Int>
        public let slotOffset: Int
    }

    /// The chunks of one set of matrices of `groups` row groups of `groupBytes` each: runs of
    /// whole groups of at most `target` bytes with each piece 64-byte aligned in the slot (a
    /// single group larger than `target` is a chunk of its own).
    public static func cut(_ mats: [(groups: Int, groupBytes: Int)], target: Int) -> [[Piece]] {
        var out: [[Piece]] = [], cur: [Piece] = [], used = 0
        for (i, m) in mats.enumerated() {
            var g = 0
            while g < m.groups {
                let at = (used + 63) / 64 * 64
                var n = min(m.groups - g, max(0, (target - at) / max(1, m.groupBytes)))
                if n == 0 {
                    if !cur.isEmpty {
                        out.append(cur)
                        cur = []
                        used = 0
                        continue
                    }
                    n = 1
                }
                cur.append(Piece(matrix: i, groups: g..<g + n, slotOffset: at))
                used = at + n * m.groupBytes
                g += n
            }
        }
        if !cur.isEmpty { out.append(cur) }
        return out
    }

    /// Bytes a chunk occupies in a slot.
    public static func bytes(_ chunk: [Piece], _ mats: [(groups: Int, groupBytes: Int)]) -> Int {
        chunk.map { $0.slotOffset + $0.groups.count * mats[$0.matrix].groupBytes }.max() ?? 0
    }

    /// The chunks of every dispatch set of a layer whose matrices (in ``DecoderLayer`` order) are
    /// `tensors`.
    static func layer(_ tensors: [TensorInfo], target: Int) -> [[[Piece]]] {
        let whole = tensors.contains { $0.codec != .raw }
        return DecoderLayer.dispatchSets.map { set in
            cut(set.map { (tensors[$0].groups, tensors[$0].groupBytes) }, target: whole ? .max : target)
        }
    }

    /// The largest slot a streamed layer needs.
    static func slotBytes(_ tensors: [TensorInfo], target: Int) -> Int {
        zip(DecoderLayer.dispatchSets, layer(tensors, target: target)).map { set, chunks in
            let mats = set.map { (tensors[$0].groups, tensors[$0].groupBytes) }
            return chunks.map { bytes($0, mats) }.max() ?? 0
        }.max() ?? 0
    }

    /// The most a streamed layer's chunk maps when used in place (``MappedUnits``): the 2 MiB
    /// folios its pieces lie in.
    static func mappedBytes(_ tensors: [TensorInfo], target: Int, map: MappedFile) -> Int {
        zip(DecoderLayer.dispatchSets, layer(tensors, target: target)).map { set, chunks in
            chunks.map { chunk in
                MappedUnits.footprint(chunk.map { p in
                    let t = tensors[set[p.matrix]]
                    return t.offset + p.groups.lowerBound * t.groupBytes..<t.offset + p.groups.upperBound * t.groupBytes
                }, of: map)
            }.max() ?? 0
        }.max() ?? 0
    }
}

/// The streamed part of a model: units for the streamed layers (chunks of their matrices, see
/// ``LayerChunks``) and for the LM head in row-group chunks, used cyclically in that order, read
/// in place from the map (``MappedUnits``) or copied into slots (``WeightStreamer``).
final class StreamedWeights: @unchecked Sendable {
    /// One unit of a streamed layer's dispatch set.
    struct Chunk: Sendable {
        let unit: Int
        let pieces: [LayerChunks.Piece]
    }

    /// Exactly one of these: the slots copied into, or the units used in place.
    let streamer: WeightStreamer?
    let mapped: MappedUnits?
    /// For every layer, the chunks of each dispatch set (empty for resident layers).
    let layerChunks: [[[Chunk]]]
    /// Unit index and row groups of each LM-head chunk (empty when the head is resident).
    let headUnits: [(unit: Int, groups: Range<Int>)]
    let head: TensorInfo

    /// `layerTensors[l]` are layer l's matrices (in the order the model binds them).
    init(file: TernFile, layerTensors: [[TensorInfo]], head: TensorInfo, placement: WeightPlacement) throws {
        var units: [StreamUnit] = []
        var layerChunks: [[[Chunk]]] = []
        for l in layerTensors.indices {
            guard placement.streamedLayers.contains(l) else {
                layerChunks.append([])
                continue
            }
            let ts = layerTensors[l]
            let sets = LayerChunks.layer(ts, target: placement.layerChunkBytes)
            layerChunks.append(zip(DecoderLayer.dispatchSets, sets).map { set, chunks in
                chunks.map { pieces in
                    units.append(StreamUnit(pieces: pieces.map { p in
                        let t = ts[set[p.matrix]]
                        return .init(tensor: t, start: p.groups.lowerBound * t.groupBytes, count: p.groups.count * t.groupBytes,
                                     slotOffset: p.slotOffset)
                    }))
                    return Chunk(unit: units.count - 1, pieces: pieces)
                }
            })
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
        let raw = units.allSatisfy { $0.pieces.allSatisfy { $0.tensor.codec == .raw } }
        if placement.reads == .map && raw && file.map.isFileMapping {
            mapped = MappedUnits(map: file.map, units: units)
            streamer = nil
        } else {
            let slotBytes = units.map { u in u.pieces.map { $0.slotOffset + $0.count }.max() ?? 0 }.max() ?? 0
            streamer = WeightStreamer(reader: try TensorReader(file: file), units: units, slotBytes: slotBytes)
            mapped = nil
        }
        self.layerChunks = layerChunks
        self.headUnits = headUnits
        self.head = head
    }

    deinit { streamer?.stop() }

    func streams(layer l: Int) -> Bool { !layerChunks[l].isEmpty }

    /// The products of dispatch set `set` of streamed layer `l` (`targets` in the set's order,
    /// their matrices unbound), chunk by chunk: each chunk is waited for, multiplied into the
    /// targets' rows, and released, the next one prefetched meanwhile. A read error is kept in
    /// the sequence's ``ModelState/streamFailure`` and ends the layer's products.
    func run(layer l: Int, set: Int, _ targets: (MatMul.Target, MatMul.Target?, MatMul.Target?), _ x: QuantizedActivations,
             batch: Int, parallel: Parallel, state: ModelState) {
        guard state.streamFailure == nil else { return }
        for chunk in layerChunks[l][set] {
            do {
                try using(chunk.unit, batch: batch, pool: parallel.pool, state: state) { piece, parts in
                    func part(_ k: Int) -> MatMul.Target? {
                        guard k < chunk.pieces.count else { return nil }
                        let p = chunk.pieces[k]
                        let t = p.matrix == 0 ? targets.0 : p.matrix == 1 ? targets.1! : targets.2!
                        let r0 = 4 * p.groups.lowerBound, r1 = min(t.w.rows, 4 * p.groups.upperBound)
                        return MatMul.Target(QMatrix(kind: t.w.kind, rows: r1 - r0, cols: t.w.cols, base: piece(k)),
                                             out: t.out + r0, outStride: t.outStride)
                    }
                    MatMul.run(part(0)!, part(1), part(2), x, batch: batch, parallel: parallel, parts: parts)
                }
            } catch {
                state.streamFailure = error
                return
            }
        }
    }

    /// Runs `body` on unit `u`, then lets it go. `body` gets the address of each of the unit's
    /// pieces and the parts to cut its product into (nil: the usual split over the pool).
    ///
    /// In place (``MappedUnits``) the unit is used where it lies, its folios held in the
    /// sequence's ``ModelState/mappedWindow`` until dropped, and split over the pool as a resident
    /// matrix is. Copied, the unit's slot is waited for (the units after it prefetched meanwhile)
    /// and released after; decoding then multiplies a streamed chunk on the calling thread alone:
    /// a chunk is ~2 MB, and waking the pool for each would cost more than the other core gives,
    /// which the loaders use (1.5B model under 256M, 2 threads: 10.4 -> 11.5 t/s). The product
    /// runs on the caller's own pool and job: sessions share the model's streamed weights, and a
    /// pool kept here for it was one MatMul job raced over by two sessions decoding at once (the
    /// C API's budgeted-threads test crashed on it).
    func using(_ u: Int, batch: Int, pool: ThreadPool, state: ModelState,
               _ body: ((Int) -> UnsafeRawPointer, Int?) -> Void) throws {
        if let mapped {
            mapped.use(u, window: &state.mappedWindow) { body({ mapped.address(unit: u, piece: $0) }, nil) }
            return
        }
        guard let streamer else { return }
        // The pool's workers would spin for the next job while this thread multiplies alone and
        // the loaders copy: on 2 cores that spinning took a loader's core (SmolLM2 under 80M, 2
        // threads: 18% of the CPU time in the pause loop).
        if batch == 1 { pool.rest() }
        let (slot, base) = try streamer.acquire(u)
        defer { streamer.release(slot: slot) }
        streamer.prefetch(after: u)
        body({ UnsafeRawPointer(base + streamer.units[u].pieces[$0].slotOffset) }, batch > 1 ? nil : 1)
    }
}
