import TernFormat
import XCTest

final class ChecksumTests: XCTestCase {
    func testXXH64MatchesReferenceValues() {
        // Values from the reference xxHash implementation (python-xxhash).
        XCTAssertEqual(XXH64.hash([]), 0xEF46_DB37_51D8_E999)
        XCTAssertEqual(XXH64.hash(Array("a".utf8)), 0xD24E_C4F1_A98C_6E5B)
        XCTAssertEqual(XXH64.hash(Array("abc".utf8)), 0x44BC_2CF5_AD77_0999)
        XCTAssertEqual(XXH64.hash([UInt8](repeating: UInt8(ascii: "x"), count: 31)), 0x60DD_0D01_083B_99F0)
        let fox = Array(String(repeating: "The quick brown fox jumps over the lazy dog", count: 3).utf8)
        XCTAssertEqual(XXH64.hash(fox), 0xC652_B4DB_FCD6_B853)
    }

    func testSHA256MatchesFIPSVectors() {
        func h(_ s: String) -> String { Array(s.utf8).withUnsafeBytes { SHA256.hex($0) } }
        XCTAssertEqual(h(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        XCTAssertEqual(h("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        XCTAssertEqual(h("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                       "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        XCTAssertEqual(h(String(repeating: "a", count: 1_000_000)),
                       "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}
