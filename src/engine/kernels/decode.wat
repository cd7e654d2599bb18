;; Single-token decode kernels on the engine's shared kernel memory (the fast decode path,
;; src/engine/decode.ts): RMSNorm, SwiGLU and single-query grouped-query attention over a
;; KV cache, so one decode step needs no JS loop over the hidden or vocabulary size.
;; $exp4 and $softmaxRow are copies of softmax.wat's (one module per .wat keeps the
;; loader simple; both must stay identical). Vector lengths must be multiples of 4 and
;; head dimensions multiples of 16 (decode.ts checks this before choosing the fast path).
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

  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; out[0, n) = x · w / sqrt(mean(x²) + eps), as HF's LlamaRMSNorm (n a multiple of 4).
  (func (export "rmsnorm") (param $x i32) (param $w i32) (param $out i32) (param $n i32) (param $eps f32)
    (local $i i32) (local $ss v128) (local $v v128) (local $s f32) (local $sv v128)
    (local.set $ss (v128.const i64x2 0 0))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
      (local.set $v (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))))
      (local.set $ss (f32x4.add (local.get $ss) (f32x4.mul (local.get $v) (local.get $v))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $each)))
    (local.set $s (f32.div (f32.const 1)
      (f32.sqrt (f32.add (f32.div (call $hsum (local.get $ss)) (f32.convert_i32_s (local.get $n))) (local.get $eps)))))
    (local.set $sv (f32x4.splat (local.get $s)))
    (local.set $i (i32.const 0))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
      (v128.store (i32.add (local.get $out) (i32.shl (local.get $i) (i32.const 2)))
        (f32x4.mul
          (f32x4.mul (v128.load (i32.add (local.get $x) (i32.shl (local.get $i) (i32.const 2)))) (local.get $sv))
          (v128.load (i32.add (local.get $w) (i32.shl (local.get $i) (i32.const 2))))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $each))))

  ;; out[0, n) = silu(g) · u = g · u / (1 + e^-g) (n a multiple of 4).
  (func (export "swiglu") (param $g i32) (param $u i32) (param $out i32) (param $n i32)
    (local $i i32) (local $x v128) (local $o i32)
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $i) (local.get $n)))
      (local.set $o (i32.shl (local.get $i) (i32.const 2)))
      (local.set $x (v128.load (i32.add (local.get $g) (local.get $o))))
      (v128.store (i32.add (local.get $out) (local.get $o))
        (f32x4.mul
          (f32x4.div (local.get $x)
            (f32x4.add (v128.const f32x4 1 1 1 1) (call $exp4 (f32x4.neg (local.get $x)))))
          (v128.load (i32.add (local.get $u) (local.get $o)))))
      (local.set $i (i32.add (local.get $i) (i32.const 4)))
      (br $each))))

  ;; One query position attending to $len cached positions, every head:
  ;; out[h] = softmax(scale · q[h] · K[g]ᵀ) · V[g] with g = h / (heads / kvHeads) (HF's
  ;; repeat_kv). q and out are [heads, D]; the caches are [kvHeads, stride, D] (one batch
  ;; row of KvCache); scores needs $len floats. D must be a multiple of 16.
  (func (export "attend") (param $q i32) (param $k i32) (param $v i32) (param $out i32) (param $scores i32)
        (param $heads i32) (param $kvHeads i32) (param $D i32) (param $len i32) (param $stride i32) (param $scale f32)
    (local $h i32) (local $group i32) (local $headBytes i32) (local $qh i32) (local $kb i32) (local $vb i32)
    (local $oh i32) (local $j i32) (local $i i32) (local $kp i32) (local $vp i32) (local $sp i32) (local $p v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $group (i32.div_s (local.get $heads) (local.get $kvHeads)))
    (local.set $headBytes (i32.shl (local.get $D) (i32.const 2)))
    (block $heads_done (loop $each_head
      (br_if $heads_done (i32.ge_s (local.get $h) (local.get $heads)))
      (local.set $kb (i32.add (local.get $k) (i32.mul (i32.div_s (local.get $h) (local.get $group))
        (i32.mul (local.get $stride) (local.get $headBytes)))))
      (local.set $vb (i32.add (local.get $v) (i32.sub (local.get $kb) (local.get $k))))
      (local.set $qh (i32.add (local.get $q) (i32.mul (local.get $h) (local.get $headBytes))))
      (local.set $oh (i32.add (local.get $out) (i32.mul (local.get $h) (local.get $headBytes))))
      ;; scores[j] = q · k_j, four independent accumulators over 16-float chunks
      (local.set $j (i32.const 0))
      (local.set $kp (local.get $kb))
      (block $s_done (loop $s_each
        (br_if $s_done (i32.ge_s (local.get $j) (local.get $len)))
        (local.set $a0 (v128.const i64x2 0 0)) (local.set $a1 (v128.const i64x2 0 0))
        (local.set $a2 (v128.const i64x2 0 0)) (local.set $a3 (v128.const i64x2 0 0))
        (local.set $i (i32.const 0))
        (block $d_done (loop $d_each
          (br_if $d_done (i32.ge_s (local.get $i) (local.get $headBytes)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
            (v128.load offset=0 (i32.add (local.get $qh) (local.get $i))) (v128.load offset=0 (i32.add (local.get $kp) (local.get $i))))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
            (v128.load offset=16 (i32.add (local.get $qh) (local.get $i))) (v128.load offset=16 (i32.add (local.get $kp) (local.get $i))))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
            (v128.load offset=32 (i32.add (local.get $qh) (local.get $i))) (v128.load offset=32 (i32.add (local.get $kp) (local.get $i))))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
            (v128.load offset=48 (i32.add (local.get $qh) (local.get $i))) (v128.load offset=48 (i32.add (local.get $kp) (local.get $i))))))
          (local.set $i (i32.add (local.get $i) (i32.const 64)))
          (br $d_each)))
        (f32.store (i32.add (local.get $scores) (i32.shl (local.get $j) (i32.const 2)))
          (call $hsum (f32x4.add (f32x4.add (local.get $a0) (local.get $a1)) (f32x4.add (local.get $a2) (local.get $a3)))))
        (local.set $kp (i32.add (local.get $kp) (local.get $headBytes)))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $s_each)))
      (call $softmaxRow (local.get $scores) (local.get $len) (local.get $len) (local.get $scale))
      ;; out[h][i..i+16) = Σ_j p_j · v_j[i..i+16)
      (local.set $i (i32.const 0))
      (block $o_done (loop $o_each
        (br_if $o_done (i32.ge_s (local.get $i) (local.get $headBytes)))
        (local.set $a0 (v128.const i64x2 0 0)) (local.set $a1 (v128.const i64x2 0 0))
        (local.set $a2 (v128.const i64x2 0 0)) (local.set $a3 (v128.const i64x2 0 0))
        (local.set $vp (i32.add (local.get $vb) (local.get $i)))
        (local.set $sp (local.get $scores))
        (local.set $j (i32.const 0))
        (block $j_done (loop $j_each
          (br_if $j_done (i32.ge_s (local.get $j) (local.get $len)))
          (local.set $p (v128.load32_splat (local.get $sp)))
          (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $p) (v128.load offset=0 (local.get $vp)))))
          (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $p) (v128.load offset=16 (local.get $vp)))))
          (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $p) (v128.load offset=32 (local.get $vp)))))
          (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $p) (v128.load offset=48 (local.get $vp)))))
          (local.set $vp (i32.add (local.get $vp) (local.get $headBytes)))
          (local.set $sp (i32.add (local.get $sp) (i32.const 4)))
          (local.set $j (i32.add (local.get $j) (i32.const 1)))
          (br $j_each)))
        (v128.store offset=0 (i32.add (local.get $oh) (local.get $i)) (local.get $a0))
        (v128.store offset=16 (i32.add (local.get $oh) (local.get $i)) (local.get $a1))
        (v128.store offset=32 (i32.add (local.get $oh) (local.get $i)) (local.get $a2))
        (v128.store offset=48 (i32.add (local.get $oh) (local.get $i)) (local.get $a3))
        (local.set $i (i32.add (local.get $i) (i32.const 64)))
        (br $o_each)))
      (local.set $h (i32.add (local.get $h) (i32.const 1)))
      (br $each_head))))

)
