/// A binary max-heap.
struct Heap<T: Comparable> {
    private var a: [T] = []

    mutating func push(_ x: T) {
        a.append(x)
        var i = a.count - 1
        while i > 0 {
            let p = (i - 1) / 2
            if !(a[p] < a[i]) { break }
            a.swapAt(p, i)
            i = p
        }
    }

    mutating func pop() -> T? {
        guard let top = a.first else { return nil }
        let last = a.removeLast()
        if !a.isEmpty {
            a[0] = last
            var i = 0
            while true {
                let l = 2 * i + 1, r = l + 1
                var m = i
                if l < a.count && a[m] < a[l] { m = l }
                if r < a.count && a[m] < a[r] { m = r }
                if m == i { break }
                a.swapAt(i, m)
                i = m
            }
        }
        return top
    }
}
