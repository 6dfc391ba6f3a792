import Foundation

/// Element-wise float operations of the forward pass.
public enum Ops {
    /// out = x / sqrt(mean(x^2) + eps) * w   (w may be nil: no weight).
    public static func rmsNorm(_ x: UnsafePointer<Float>, _ w: UnsafePointer<Float>?, count n: Int, eps: Float,
                               out: UnsafeMutablePointer<Float>) {
        var ss: Float = 0
        for i in 0..<n { ss += x[i] * x[i] }
        let scale = 1 / (ss / Float(n) + eps).squareRoot()
        if let w {
            for i in 0..<n { out[i] = x[i] * scale * w[i] }
        } else {
            for i in 0..<n { out[i] = x[i] * scale }
        }
    }

    /// Rotary embedding, NEOX layout (pairs i and i + dim/2), in place on `heads` vectors of `dim`.
    /// `inv` holds base^(-2i/dim) for i in 0..<dim/2.
    public static func ropeNeox(_ x: UnsafeMutablePointer<Float>, heads: Int, dim: Int, pos: Int, inv: UnsafePointer<Float>) {
        let half = dim / 2
        for i in 0..<half {
            let theta = Float(pos) * inv[i]
            let c = cos(theta), s = sin(theta)
            for h in 0..<heads {
                let p = x + h * dim
                let a = p[i], b = p[i + half]
                p[i] = a * c - b * s
                p[i + half] = a * s + b * c
            }
        }
    }

    /// GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
    @inline(__always) public static func gelu(_ x: Float) -> Float {
        0.5 * x * (1 + tanh(0.797_884_56 * (x + 0.044715 * x * x * x)))
    }

    /// In-place softmax over `n` values.
    public static func softmax(_ x: UnsafeMutablePointer<Float>, _ n: Int) {
        var m = -Float.infinity
        for i in 0..<n { m = max(m, x[i]) }
        var s: Float = 0
        for i in 0..<n { x[i] = exp(x[i] - m); s += x[i] }
        let inv = 1 / s
        for i in 0..<n { x[i] *= inv }
    }
}
