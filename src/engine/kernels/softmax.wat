;; Row softmax for attention scores, in place, on the engine's shared kernel memory:
;; row i of x[rows×cols] becomes softmax(scale · x[i, 0..len)) with len = min(cols,
;; offset + i + 1) (causal: query i of a chunk starting at `offset` sees keys 0..offset+i),
;; and zeros after len. exp is a vectorised Cephes-style expf (range reduction by ln 2,
;; degree-6 polynomial, 2^n built in the exponent bits), within 2 ulp of Math.exp over
;; the range softmax uses (x - max ≤ 0).
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; e^x for each lane; x is clamped to [-87.3, 88.7] so 2^n stays a normal float.
  ;; pmin/pmax and the round-by-magic-number trick (adding 1.5·2^23 leaves round(y) in
  ;; the low mantissa bits) each compile to one or two x86 instructions, where min/max
  ;; (NaN rules), nearest and trunc_sat cost several.
  (func $exp4 (param $x v128) (result v128)
    (local $t v128) (local $n v128) (local $r v128) (local $p v128) (local $r2 v128)
    (local.set $x (f32x4.pmax (f32x4.pmin (local.get $x) (v128.const f32x4 88.7 88.7 88.7 88.7))
                              (v128.const f32x4 -87.3 -87.3 -87.3 -87.3)))
    ;; n = round(x / ln 2); r = x - n·ln 2 in two parts so r keeps full precision.
    (local.set $t (f32x4.add
      (f32x4.mul (local.get $x)
        (v128.const f32x4 1.44269504088896341 1.44269504088896341 1.44269504088896341 1.44269504088896341))
      (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $n (f32x4.sub (local.get $t) (v128.const f32x4 12582912 12582912 12582912 12582912)))
    (local.set $r (f32x4.sub (local.get $x)
      (f32x4.mul (local.get $n) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375))))
    (local.set $r (f32x4.sub (local.get $r)
      (f32x4.mul (local.get $n) (v128.const f32x4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4 -2.12194440e-4))))
    (local.set $r2 (f32x4.mul (local.get $r) (local.get $r)))
    (local.set $p (v128.const f32x4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4 1.9875691500e-4))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3 1.3981999507e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3 8.3334519073e-3)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2 4.1665795894e-2)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1 1.6666665459e-1)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r))
      (v128.const f32x4 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1 5.0000001201e-1)))
    ;; e^r = 1 + r + r²·p
    (local.set $p (f32x4.add
      (f32x4.add (f32x4.mul (local.get $p) (local.get $r2)) (local.get $r))
      (v128.const f32x4 1 1 1 1)))
    ;; · 2^n: n's integer sits in t's low mantissa bits (t's bits - 0x4b400000); shifted
    ;; into the exponent with the +127 bias it is 2^n as a float.
    (f32x4.mul (local.get $p)
      (i32x4.shl
        (i32x4.add (i32x4.sub (local.get $t) (v128.const i32x4 0x4b400000 0x4b400000 0x4b400000 0x4b400000))
                   (v128.const i32x4 127 127 127 127))
        (i32.const 23))))

  (func (export "exp4") (param $x f32) (result f32)
    (f32x4.extract_lane 0 (call $exp4 (f32x4.splat (local.get $x)))))

  ;; One row at byte address $row: len live entries, then (cols - len) zeros.
  (func $softmaxRow (param $row i32) (param $len i32) (param $cols i32) (param $scale f32)
    (local $j i32) (local $end i32) (local $v v128) (local $mx v128) (local $sum v128)
    (local $m f32) (local $s f32) (local $e f32) (local $x f32) (local $t v128)
    (local.set $end (i32.and (local.get $len) (i32.const -4)))
    ;; scale and max
    (local.set $mx (v128.const f32x4 -inf -inf -inf -inf))
    (local.set $m (f32.const -inf))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $j) (local.get $end)))
      (local.set $v (f32x4.mul (v128.load (local.get $row)) (f32x4.splat (local.get $scale))))
      (v128.store (local.get $row) (local.get $v))
      (local.set $mx (f32x4.pmax (local.get $mx) (local.get $v)))
      (local.set $row (i32.add (local.get $row) (i32.const 16)))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $each)))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $j) (local.get $len)))
      (local.set $x (f32.mul (f32.load (local.get $row)) (local.get $scale)))
      (f32.store (local.get $row) (local.get $x))
      (local.set $m (f32.max (local.get $m) (local.get $x)))
      (local.set $row (i32.add (local.get $row) (i32.const 4)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $each)))
    (local.set $m (f32.max (local.get $m)
      (f32.max (f32.max (f32x4.extract_lane 0 (local.get $mx)) (f32x4.extract_lane 1 (local.get $mx)))
               (f32.max (f32x4.extract_lane 2 (local.get $mx)) (f32x4.extract_lane 3 (local.get $mx))))))
    ;; exp(x - max) and the sum
    (local.set $row (i32.sub (local.get $row) (i32.shl (local.get $len) (i32.const 2))))
    (local.set $mx (f32x4.splat (local.get $m)))
    (local.set $sum (v128.const i64x2 0 0))
    (local.set $j (i32.const 0))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $j) (local.get $end)))
      (local.set $v (call $exp4 (f32x4.sub (v128.load (local.get $row)) (local.get $mx))))
      (v128.store (local.get $row) (local.get $v))
      (local.set $sum (f32x4.add (local.get $sum) (local.get $v)))
      (local.set $row (i32.add (local.get $row) (i32.const 16)))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $each)))
    (local.set $s (f32.const 0))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $j) (local.get $len)))
      (local.set $e (f32x4.extract_lane 0
        (call $exp4 (f32x4.splat (f32.sub (f32.load (local.get $row)) (local.get $m))))))
      (f32.store (local.get $row) (local.get $e))
      (local.set $s (f32.add (local.get $s) (local.get $e)))
      (local.set $row (i32.add (local.get $row) (i32.const 4)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $each)))
    (local.set $s (f32.add (local.get $s)
      (f32.add (f32.add (f32x4.extract_lane 0 (local.get $sum)) (f32x4.extract_lane 1 (local.get $sum)))
               (f32.add (f32x4.extract_lane 2 (local.get $sum)) (f32x4.extract_lane 3 (local.get $sum))))))
    ;; normalise
    (local.set $row (i32.sub (local.get $row) (i32.shl (local.get $len) (i32.const 2))))
    (local.set $s (f32.div (f32.const 1) (local.get $s)))
    (local.set $t (f32x4.splat (local.get $s)))
    (local.set $j (i32.const 0))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $j) (local.get $end)))
      (v128.store (local.get $row) (f32x4.mul (v128.load (local.get $row)) (local.get $t)))
      (local.set $row (i32.add (local.get $row) (i32.const 16)))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $each)))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $j) (local.get $len)))
      (f32.store (local.get $row) (f32.mul (f32.load (local.get $row)) (local.get $s)))
      (local.set $row (i32.add (local.get $row) (i32.const 4)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $each)))
    ;; masked tail
    (if (i32.gt_s (local.get $cols) (local.get $len))
      (then (memory.fill (local.get $row) (i32.const 0)
        (i32.shl (i32.sub (local.get $cols) (local.get $len)) (i32.const 2))))))

  ;; Rows [0, rows) of x (byte address $x, rows×cols floats), in place.
  (func (export "causalSoftmax") (param $x i32) (param $rows i32) (param $cols i32) (param $offset i32) (param $scale f32)
    (local $i i32) (local $len i32)
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $i) (local.get $rows)))
      (local.set $len (i32.add (i32.add (local.get $offset) (local.get $i)) (i32.const 1)))
      (local.set $len (select (local.get $cols) (local.get $len) (i32.gt_s (local.get $len) (local.get $cols))))
      (local.set $len (select (i32.const 0) (local.get $len) (i32.lt_s (local.get $len) (i32.const 0))))
      (call $softmaxRow
        (i32.add (local.get $x) (i32.shl (i32.mul (local.get $i) (local.get $cols)) (i32.const 2)))
        (local.get $len) (local.get $cols) (local.get $scale))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $each))))
)
