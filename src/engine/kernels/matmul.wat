;; fp32 matmul for emlab's engine: C[m×n] (+)= op(A) · op(B), row-major.
;;
;; GotoBLAS/BLIS structure: a KC×NC panel of op(B) and an MC×KC block of op(A) are
;; packed (from any transpose layout) into the layouts the micro-kernel streams, then a
;; 4×8 register-tiled micro-kernel (8 f32x4 accumulators) walks the packed panels.
;; 4×8 is the largest tile that fits V8's 15 usable xmm registers without spilling
;; (6×8, 4×12, 4×16 were all measured slower).
;;
;; Memory is imported and shared so worker threads can run `gemm` on disjoint row
;; ranges of the same C. All addresses are byte offsets. `scratch` is a per-thread
;; area of SCRATCH_BYTES (see matmul-layout.ts) holding the packed panels.
;;
;; Every vector multiply-add is written (f32x4.add (local.get $acc) (f32x4.mul X Y));
;; scripts/build-wasm.mjs rewrites exactly that form into (f32x4.relaxed_madd X Y
;; (local.get $acc)) for the relaxed-simd build. Keep that form.
(module
  (import "env" "memory" (memory 1 65536 shared))

  ;; Block sizes (floats). Mirrored in matmul-layout.ts; keep in sync.
  (global $MC i32 (i32.const 128))
  (global $KC i32 (i32.const 256))
  (global $NC i32 (i32.const 1024))

  ;; C tile (rows×cols ≤ 4×8 at byte address $c, row stride $ldc floats)
  ;;   += packed A strip ($ap: kc steps of 4 floats) · packed B strip ($bp: kc steps of 8).
  ;; Edge tiles go through the 128-byte $edge buffer so only valid elements are written.
  (func $micro (param $ap i32) (param $bp i32) (param $kc i32) (param $c i32) (param $ldc i32)
               (param $rows i32) (param $cols i32) (param $edge i32)
    (local $c00 v128) (local $c01 v128)
    (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128)
    (local $c30 v128) (local $c31 v128)
    (local $b0 v128) (local $b1 v128) (local $a v128)
    (local $i i32) (local $j i32) (local $row i32) (local $stride i32)
    (loop $depth
      (local.set $b0 (v128.load offset=0 (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $a (v128.load32_splat offset=0 (local.get $ap)))
      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat offset=4 (local.get $ap)))
      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat offset=8 (local.get $ap)))
      (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat offset=12 (local.get $ap)))
      (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (br_if $depth (local.tee $kc (i32.sub (local.get $kc) (i32.const 1)))))
    (local.set $stride (i32.shl (local.get $ldc) (i32.const 2)))
    (if (i32.and (i32.eq (local.get $rows) (i32.const 4)) (i32.eq (local.get $cols) (i32.const 8)))
      (then
        (v128.store offset=0 (local.get $c) (f32x4.add (v128.load offset=0 (local.get $c)) (local.get $c00)))
        (v128.store offset=16 (local.get $c) (f32x4.add (v128.load offset=16 (local.get $c)) (local.get $c01)))
        (local.set $c (i32.add (local.get $c) (local.get $stride)))
        (v128.store offset=0 (local.get $c) (f32x4.add (v128.load offset=0 (local.get $c)) (local.get $c10)))
        (v128.store offset=16 (local.get $c) (f32x4.add (v128.load offset=16 (local.get $c)) (local.get $c11)))
        (local.set $c (i32.add (local.get $c) (local.get $stride)))
        (v128.store offset=0 (local.get $c) (f32x4.add (v128.load offset=0 (local.get $c)) (local.get $c20)))
        (v128.store offset=16 (local.get $c) (f32x4.add (v128.load offset=16 (local.get $c)) (local.get $c21)))
        (local.set $c (i32.add (local.get $c) (local.get $stride)))
        (v128.store offset=0 (local.get $c) (f32x4.add (v128.load offset=0 (local.get $c)) (local.get $c30)))
        (v128.store offset=16 (local.get $c) (f32x4.add (v128.load offset=16 (local.get $c)) (local.get $c31)))
        (return)))
    (v128.store offset=0 (local.get $edge) (local.get $c00))
    (v128.store offset=16 (local.get $edge) (local.get $c01))
    (v128.store offset=32 (local.get $edge) (local.get $c10))
    (v128.store offset=48 (local.get $edge) (local.get $c11))
    (v128.store offset=64 (local.get $edge) (local.get $c20))
    (v128.store offset=80 (local.get $edge) (local.get $c21))
    (v128.store offset=96 (local.get $edge) (local.get $c30))
    (v128.store offset=112 (local.get $edge) (local.get $c31))
    (loop $each_row
      (local.set $j (i32.const 0))
      (local.set $row (i32.add (local.get $edge) (i32.shl (local.get $i) (i32.const 5))))
      (loop $each_col
        (f32.store (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2)))
          (f32.add
            (f32.load (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
            (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))))
        (br_if $each_col (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $cols))))
      (local.set $c (i32.add (local.get $c) (local.get $stride)))
      (br_if $each_row (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $rows)))))

  ;; Transposes the 4×4 block whose rows start at $s0..$s3 (4 floats each) and stores
  ;; its columns at $d, $d+$stride, $d+2·$stride, $d+3·$stride. Used by the packers to
  ;; turn 4 contiguous rows into 4 interleaved depth steps.
  (func $transpose4 (param $s0 i32) (param $s1 i32) (param $s2 i32) (param $s3 i32) (param $d i32) (param $stride i32)
    (local $r0 v128) (local $r1 v128) (local $r2 v128) (local $r3 v128)
    (local $lo01 v128) (local $lo23 v128) (local $hi01 v128) (local $hi23 v128)
    (local.set $r0 (v128.load (local.get $s0)))
    (local.set $r1 (v128.load (local.get $s1)))
    (local.set $r2 (v128.load (local.get $s2)))
    (local.set $r3 (v128.load (local.get $s3)))
    ;; lanes [r0.0 r1.0 r0.1 r1.1], [r2.0 r3.0 r2.1 r3.1], then the .2/.3 halves
    (local.set $lo01 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r0) (local.get $r1)))
    (local.set $lo23 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $r2) (local.get $r3)))
    (local.set $hi01 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r0) (local.get $r1)))
    (local.set $hi23 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $r2) (local.get $r3)))
    (v128.store (local.get $d)
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $lo01) (local.get $lo23)))
    (local.set $d (i32.add (local.get $d) (local.get $stride)))
    (v128.store (local.get $d)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $lo01) (local.get $lo23)))
    (local.set $d (i32.add (local.get $d) (local.get $stride)))
    (v128.store (local.get $d)
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $hi01) (local.get $hi23)))
    (local.set $d (i32.add (local.get $d) (local.get $stride)))
    (v128.store (local.get $d)
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $hi01) (local.get $hi23))))

  ;; Copies $count floats from $src (stepping $step bytes) to $dst (stepping $dstep
  ;; bytes), or writes $count zeros when $src is 0 (address 0 is never an operand).
  (func $gather (param $src i32) (param $step i32) (param $dst i32) (param $dstep i32) (param $count i32)
    (if (i32.le_s (local.get $count) (i32.const 0)) (then (return)))
    (if (i32.eqz (local.get $src))
      (then
        (loop $zero
          (f32.store (local.get $dst) (f32.const 0))
          (local.set $dst (i32.add (local.get $dst) (local.get $dstep)))
          (br_if $zero (local.tee $count (i32.sub (local.get $count) (i32.const 1)))))
        (return)))
    (loop $copy
      (f32.store (local.get $dst) (f32.load (local.get $src)))
      (local.set $src (i32.add (local.get $src) (local.get $step)))
      (local.set $dst (i32.add (local.get $dst) (local.get $dstep)))
      (br_if $copy (local.tee $count (i32.sub (local.get $count) (i32.const 1))))))

  ;; Packs rows [i0, i0+mc) × depth [p0, p0+kc) of op(A) into 4-row strips at $dst:
  ;; strip s holds, for each depth step, the 4 row values side by side (zero past mc).
  ;; op(A)[i,p] = A[i*k+p], or A[p*m+i] when transA.
  (func $packA (param $a i32) (param $dst i32) (param $m i32) (param $k i32) (param $transA i32)
               (param $i0 i32) (param $mc i32) (param $p0 i32) (param $kc i32)
    (local $s i32) (local $r i32) (local $i i32) (local $p i32) (local $rows i32)
    (local $src i32) (local $step i32) (local $d i32) (local $strip i32)
    (loop $each_strip
      (local.set $strip (i32.add (local.get $dst) (i32.mul (local.get $s) (i32.shl (local.get $kc) (i32.const 4)))))
      (local.set $rows (i32.sub (local.get $mc) (i32.shl (local.get $s) (i32.const 2))))
      (local.set $i (i32.add (local.get $i0) (i32.shl (local.get $s) (i32.const 2))))
      (local.set $p (i32.const 0))
      (if (i32.ge_s (local.get $rows) (i32.const 4))
        (then
          (if (local.get $transA)
            (then
              ;; The 4 rows are adjacent in memory: one vector per depth step.
              (local.set $src (i32.add (local.get $a)
                (i32.shl (i32.add (i32.mul (local.get $p0) (local.get $m)) (local.get $i)) (i32.const 2))))
              (local.set $step (i32.shl (local.get $m) (i32.const 2)))
              (local.set $d (local.get $strip))
              (loop $each_depth
                (v128.store (local.get $d) (v128.load (local.get $src)))
                (local.set $src (i32.add (local.get $src) (local.get $step)))
                (local.set $d (i32.add (local.get $d) (i32.const 16)))
                (br_if $each_depth (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $kc)))))
            (else
              ;; 4 contiguous rows: transpose 4×4 blocks; the < 4 leftover depths go below.
              (local.set $src (i32.add (local.get $a)
                (i32.shl (i32.add (i32.mul (local.get $i) (local.get $k)) (local.get $p0)) (i32.const 2))))
              (local.set $step (i32.shl (local.get $k) (i32.const 2)))
              (block $blocks_done
                (loop $blocks
                  (br_if $blocks_done (i32.gt_s (i32.add (local.get $p) (i32.const 4)) (local.get $kc)))
                  (call $transpose4
                    (local.get $src)
                    (i32.add (local.get $src) (local.get $step))
                    (i32.add (local.get $src) (i32.shl (local.get $step) (i32.const 1)))
                    (i32.add (local.get $src) (i32.mul (local.get $step) (i32.const 3)))
                    (i32.add (local.get $strip) (i32.shl (local.get $p) (i32.const 4)))
                    (i32.const 16))
                  (local.set $src (i32.add (local.get $src) (i32.const 16)))
                  (local.set $p (i32.add (local.get $p) (i32.const 4)))
                  (br $blocks)))))))
      ;; Scalar path for the depths [p, kc) not done above, row by row (zero past mc).
      (if (i32.lt_s (local.get $p) (local.get $kc))
        (then
          (local.set $r (i32.const 0))
          (loop $each_row
            (if (local.get $transA)
              (then
                (local.set $src (i32.shl (i32.add (i32.mul (i32.add (local.get $p0) (local.get $p)) (local.get $m))
                  (i32.add (local.get $i) (local.get $r))) (i32.const 2)))
                (local.set $step (i32.shl (local.get $m) (i32.const 2))))
              (else
                (local.set $src (i32.shl (i32.add (i32.mul (i32.add (local.get $i) (local.get $r)) (local.get $k))
                  (i32.add (local.get $p0) (local.get $p))) (i32.const 2)))
                (local.set $step (i32.const 4))))
            (call $gather
              (select (i32.add (local.get $a) (local.get $src)) (i32.const 0) (i32.lt_s (local.get $r) (local.get $rows)))
              (local.get $step)
              (i32.add (local.get $strip) (i32.add (i32.shl (local.get $p) (i32.const 4)) (i32.shl (local.get $r) (i32.const 2))))
              (i32.const 16)
              (i32.sub (local.get $kc) (local.get $p)))
            (br_if $each_row (i32.lt_u (local.tee $r (i32.add (local.get $r) (i32.const 1))) (i32.const 4))))))
      (br_if $each_strip (i32.lt_s
        (i32.shl (local.tee $s (i32.add (local.get $s) (i32.const 1))) (i32.const 2))
        (local.get $mc)))))

  ;; Packs depth [p0, p0+kc) × columns [j0, j0+nc) of op(B) into 8-column strips at $dst:
  ;; strip s holds, for each depth step, 8 column values side by side (zero past nc).
  ;; op(B)[p,j] = B[p*n+j], or B[j*k+p] when transB.
  (func $packB (param $b i32) (param $dst i32) (param $n i32) (param $k i32) (param $transB i32)
               (param $p0 i32) (param $kc i32) (param $j0 i32) (param $nc i32)
    (local $s i32) (local $q i32) (local $j i32) (local $p i32) (local $cols i32)
    (local $src i32) (local $step i32) (local $d i32) (local $strip i32)
    (loop $each_strip
      (local.set $strip (i32.add (local.get $dst) (i32.mul (local.get $s) (i32.shl (local.get $kc) (i32.const 5)))))
      (local.set $cols (i32.sub (local.get $nc) (i32.shl (local.get $s) (i32.const 3))))
      (local.set $j (i32.add (local.get $j0) (i32.shl (local.get $s) (i32.const 3))))
      (local.set $p (i32.const 0))
      (if (i32.ge_s (local.get $cols) (i32.const 8))
        (then
          (if (i32.eqz (local.get $transB))
            (then
              ;; The 8 columns are adjacent in memory: two vectors per depth step.
              (local.set $src (i32.add (local.get $b)
                (i32.shl (i32.add (i32.mul (local.get $p0) (local.get $n)) (local.get $j)) (i32.const 2))))
              (local.set $step (i32.shl (local.get $n) (i32.const 2)))
              (local.set $d (local.get $strip))
              (loop $each_depth
                (v128.store offset=0 (local.get $d) (v128.load offset=0 (local.get $src)))
                (v128.store offset=16 (local.get $d) (v128.load offset=16 (local.get $src)))
                (local.set $src (i32.add (local.get $src) (local.get $step)))
                (local.set $d (i32.add (local.get $d) (i32.const 32)))
                (br_if $each_depth (i32.lt_u (local.tee $p (i32.add (local.get $p) (i32.const 1))) (local.get $kc)))))
            (else
              ;; 8 contiguous rows of B (= columns of op(B)): two 4×4 transposes per 4 depths.
              (local.set $src (i32.add (local.get $b)
                (i32.shl (i32.add (i32.mul (local.get $j) (local.get $k)) (local.get $p0)) (i32.const 2))))
              (local.set $step (i32.shl (local.get $k) (i32.const 2)))
              (block $blocks_done
                (loop $blocks
                  (br_if $blocks_done (i32.gt_s (i32.add (local.get $p) (i32.const 4)) (local.get $kc)))
                  (local.set $d (i32.add (local.get $strip) (i32.shl (local.get $p) (i32.const 5))))
                  (call $transpose4
                    (local.get $src)
                    (i32.add (local.get $src) (local.get $step))
                    (i32.add (local.get $src) (i32.shl (local.get $step) (i32.const 1)))
                    (i32.add (local.get $src) (i32.mul (local.get $step) (i32.const 3)))
                    (local.get $d)
                    (i32.const 32))
                  (call $transpose4
                    (i32.add (local.get $src) (i32.shl (local.get $step) (i32.const 2)))
                    (i32.add (local.get $src) (i32.mul (local.get $step) (i32.const 5)))
                    (i32.add (local.get $src) (i32.mul (local.get $step) (i32.const 6)))
                    (i32.add (local.get $src) (i32.mul (local.get $step) (i32.const 7)))
                    (i32.add (local.get $d) (i32.const 16))
                    (i32.const 32))
                  (local.set $src (i32.add (local.get $src) (i32.const 16)))
                  (local.set $p (i32.add (local.get $p) (i32.const 4)))
                  (br $blocks)))))))
      ;; Scalar path for the depths [p, kc) not done above, column by column (zero past nc).
      (if (i32.lt_s (local.get $p) (local.get $kc))
        (then
          (local.set $q (i32.const 0))
          (loop $each_col
            (if (local.get $transB)
              (then
                (local.set $src (i32.shl (i32.add (i32.mul (i32.add (local.get $j) (local.get $q)) (local.get $k))
                  (i32.add (local.get $p0) (local.get $p))) (i32.const 2)))
                (local.set $step (i32.const 4)))
              (else
                (local.set $src (i32.shl (i32.add (i32.mul (i32.add (local.get $p0) (local.get $p)) (local.get $n))
                  (i32.add (local.get $j) (local.get $q))) (i32.const 2)))
                (local.set $step (i32.shl (local.get $n) (i32.const 2)))))
            (call $gather
              (select (i32.add (local.get $b) (local.get $src)) (i32.const 0) (i32.lt_s (local.get $q) (local.get $cols)))
              (local.get $step)
              (i32.add (local.get $strip) (i32.add (i32.shl (local.get $p) (i32.const 5)) (i32.shl (local.get $q) (i32.const 2))))
              (i32.const 32)
              (i32.sub (local.get $kc) (local.get $p)))
            (br_if $each_col (i32.lt_u (local.tee $q (i32.add (local.get $q) (i32.const 1))) (i32.const 8))))))
      (br_if $each_strip (i32.lt_s
        (i32.shl (local.tee $s (i32.add (local.get $s) (i32.const 1))) (i32.const 3))
        (local.get $nc)))))

  ;; Byte offset of the (jc, pc) panel inside a whole packed op(B) (see packBAll):
  ;; full NC-wide column blocks before it, then pc rows of its 8-padded width.
  (func $panelOffset (param $jc i32) (param $pc i32) (param $k i32) (param $nc i32) (result i32)
    (i32.shl
      (i32.add (i32.mul (local.get $jc) (local.get $k))
               (i32.mul (local.get $pc) (i32.and (i32.add (local.get $nc) (i32.const 7)) (i32.const -8))))
      (i32.const 2)))

  ;; Packs all of op(B) at $dst, panel by panel, in the layout gemm reads when given
  ;; $prepacked: k × (n rounded up to 8) floats. Done once by the calling thread so
  ;; worker threads share it instead of each re-packing B.
  (func (export "packBAll") (param $b i32) (param $dst i32) (param $n i32) (param $k i32) (param $transB i32)
    (local $jc i32) (local $nc i32) (local $pc i32) (local $kc i32)
    (if (i32.or (i32.eqz (local.get $n)) (i32.eqz (local.get $k))) (then (return)))
    (loop $each_jc
      (local.set $nc (select (global.get $NC) (i32.sub (local.get $n) (local.get $jc))
        (i32.lt_s (global.get $NC) (i32.sub (local.get $n) (local.get $jc)))))
      (local.set $pc (i32.const 0))
      (loop $each_pc
        (local.set $kc (select (global.get $KC) (i32.sub (local.get $k) (local.get $pc))
          (i32.lt_s (global.get $KC) (i32.sub (local.get $k) (local.get $pc)))))
        (call $packB (local.get $b)
          (i32.add (local.get $dst) (call $panelOffset (local.get $jc) (local.get $pc) (local.get $k) (local.get $nc)))
          (local.get $n) (local.get $k) (local.get $transB) (local.get $pc) (local.get $kc) (local.get $jc) (local.get $nc))
        (br_if $each_pc (i32.lt_s (local.tee $pc (i32.add (local.get $pc) (global.get $KC))) (local.get $k))))
      (br_if $each_jc (i32.lt_s (local.tee $jc (i32.add (local.get $jc) (global.get $NC))) (local.get $n)))))

  ;; Rows [r0, r1) of C (+)= op(A) · op(B). Threads call this on disjoint row ranges,
  ;; each with its own $scratch: packed A block, packed B panel, edge tile. With
  ;; $prepacked ≠ 0, op(B) was already packed there by packBAll and is read, not packed.
  (func (export "gemm") (param $a i32) (param $b i32) (param $c i32)
        (param $m i32) (param $n i32) (param $k i32)
        (param $transA i32) (param $transB i32) (param $accumulate i32)
        (param $r0 i32) (param $r1 i32) (param $scratch i32) (param $prepacked i32)
    (call $gemmRange (local.get $a) (local.get $b) (local.get $c) (local.get $m) (local.get $n) (local.get $k)
      (local.get $transA) (local.get $transB) (local.get $accumulate)
      (local.get $r0) (local.get $r1) (i32.const 0) (local.get $n) (local.get $scratch) (local.get $prepacked)))

  ;; Columns [j0, j1) of C (+)= op(A) · op(B), every row. Threads call this on disjoint
  ;; column ranges (j0 a multiple of 8) of wide products with few rows (a prefill's
  ;; projections): each packs only its own columns of B, so no thread packs all of B
  ;; first. Every element's sum runs in the same order as gemm's, so C is bit-identical.
  (func (export "gemmCols") (param $a i32) (param $b i32) (param $c i32)
        (param $m i32) (param $n i32) (param $k i32)
        (param $transA i32) (param $transB i32) (param $accumulate i32)
        (param $j0 i32) (param $j1 i32) (param $scratch i32)
    (call $gemmRange (local.get $a) (local.get $b) (local.get $c) (local.get $m) (local.get $n) (local.get $k)
      (local.get $transA) (local.get $transB) (local.get $accumulate)
      (i32.const 0) (local.get $m) (local.get $j0) (local.get $j1) (local.get $scratch) (i32.const 0)))

  ;; Rows [r0, r1) × columns [j0, j1) of C; $prepacked only with the whole column range.
  (func $gemmRange (param $a i32) (param $b i32) (param $c i32)
        (param $m i32) (param $n i32) (param $k i32)
        (param $transA i32) (param $transB i32) (param $accumulate i32)
        (param $r0 i32) (param $r1 i32) (param $j0 i32) (param $j1 i32) (param $scratch i32) (param $prepacked i32)
    (local $packedA i32) (local $packedB i32) (local $edge i32) (local $panel i32)
    (local $jc i32) (local $nc i32) (local $pc i32) (local $kc i32) (local $ic i32) (local $mc i32)
    (local $jr i32) (local $ir i32) (local $rows i32) (local $cols i32) (local $cRow i32)
    (if (i32.le_s (local.get $r1) (local.get $r0)) (then (return)))
    (if (i32.le_s (local.get $j1) (local.get $j0)) (then (return)))
    (if (i32.eqz (local.get $accumulate))
      (then
        (if (i32.and (i32.eqz (local.get $j0)) (i32.eq (local.get $j1) (local.get $n)))
          (then (memory.fill
            (i32.add (local.get $c) (i32.shl (i32.mul (local.get $r0) (local.get $n)) (i32.const 2)))
            (i32.const 0)
            (i32.shl (i32.mul (i32.sub (local.get $r1) (local.get $r0)) (local.get $n)) (i32.const 2))))
          (else
            (local.set $cRow (local.get $r0))
            (loop $zero_rows
              (memory.fill
                (i32.add (local.get $c) (i32.shl
                  (i32.add (i32.mul (local.get $cRow) (local.get $n)) (local.get $j0)) (i32.const 2)))
                (i32.const 0)
                (i32.shl (i32.sub (local.get $j1) (local.get $j0)) (i32.const 2)))
              (br_if $zero_rows (i32.lt_s (local.tee $cRow (i32.add (local.get $cRow) (i32.const 1))) (local.get $r1))))))))
    (if (i32.or (i32.eqz (local.get $k)) (i32.eqz (local.get $n))) (then (return)))
    (local.set $jc (local.get $j0))
    (local.set $packedA (local.get $scratch))
    (local.set $packedB (i32.add (local.get $packedA) (i32.shl (i32.mul (global.get $MC) (global.get $KC)) (i32.const 2))))
    (local.set $edge (i32.add (local.get $packedB) (i32.shl (i32.mul (global.get $KC) (global.get $NC)) (i32.const 2))))
    (loop $each_jc
      (local.set $nc (select (global.get $NC) (i32.sub (local.get $j1) (local.get $jc))
        (i32.lt_s (global.get $NC) (i32.sub (local.get $j1) (local.get $jc)))))
      (local.set $pc (i32.const 0))
      (loop $each_pc
        (local.set $kc (select (global.get $KC) (i32.sub (local.get $k) (local.get $pc))
          (i32.lt_s (global.get $KC) (i32.sub (local.get $k) (local.get $pc)))))
        (if (local.get $prepacked)
          (then (local.set $panel (i32.add (local.get $prepacked)
            (call $panelOffset (local.get $jc) (local.get $pc) (local.get $k) (local.get $nc)))))
          (else
            (local.set $panel (local.get $packedB))
            (call $packB (local.get $b) (local.get $packedB) (local.get $n) (local.get $k) (local.get $transB)
              (local.get $pc) (local.get $kc) (local.get $jc) (local.get $nc))))
        (local.set $ic (local.get $r0))
        (loop $each_ic
          (local.set $mc (select (global.get $MC) (i32.sub (local.get $r1) (local.get $ic))
            (i32.lt_s (global.get $MC) (i32.sub (local.get $r1) (local.get $ic)))))
          (call $packA (local.get $a) (local.get $packedA) (local.get $m) (local.get $k) (local.get $transA)
            (local.get $ic) (local.get $mc) (local.get $pc) (local.get $kc))
          (local.set $jr (i32.const 0))
          (loop $each_jr
            (local.set $cols (select (i32.const 8) (i32.sub (local.get $nc) (local.get $jr))
              (i32.lt_s (i32.const 8) (i32.sub (local.get $nc) (local.get $jr)))))
            (local.set $ir (i32.const 0))
            (loop $each_ir
              (local.set $rows (select (i32.const 4) (i32.sub (local.get $mc) (local.get $ir))
                (i32.lt_s (i32.const 4) (i32.sub (local.get $mc) (local.get $ir)))))
              (local.set $cRow (i32.add (local.get $ic) (local.get $ir)))
              (call $micro
                (i32.add (local.get $packedA) (i32.mul (local.get $ir) (i32.shl (local.get $kc) (i32.const 2))))
                (i32.add (local.get $panel) (i32.mul (local.get $jr) (i32.shl (local.get $kc) (i32.const 2))))
                (local.get $kc)
                (i32.add (local.get $c) (i32.shl
                  (i32.add (i32.mul (local.get $cRow) (local.get $n)) (i32.add (local.get $jc) (local.get $jr)))
                  (i32.const 2)))
                (local.get $n) (local.get $rows) (local.get $cols) (local.get $edge))
              (br_if $each_ir (i32.lt_s (local.tee $ir (i32.add (local.get $ir) (i32.const 4))) (local.get $mc))))
            (br_if $each_jr (i32.lt_s (local.tee $jr (i32.add (local.get $jr) (i32.const 8))) (local.get $nc))))
          (br_if $each_ic (i32.lt_s (local.tee $ic (i32.add (local.get $ic) (global.get $MC))) (local.get $r1))))
        (br_if $each_pc (i32.lt_s (local.tee $pc (i32.add (local.get $pc) (global.get $KC))) (local.get $k))))
      (br_if $each_jc (i32.lt_s (local.tee $jc (i32.add (local.get $jc) (global.get $NC))) (local.get $j1)))))

    ;; One row: c[j0, j1) (+)= a[0, k) · op(B)[:, j0..j1). Used for m = 1 (decode steps)
  ;; and other thin products, where packing B would cost as much as the product itself.
  ;; B stored k×n (transB = 0): vectorise over columns, 32 at a time, walking B's rows.
  (func $gemvN (param $a i32) (param $b i32) (param $c i32) (param $n i32) (param $k i32)
               (param $accumulate i32) (param $j0 i32) (param $j1 i32)
    (local $j i32) (local $p i32) (local $ap i32) (local $bp i32) (local $cp i32) (local $stride i32)
    (local $x v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $s4 v128) (local $s5 v128) (local $s6 v128) (local $s7 v128)
    (local $sum f32)
    (local.set $stride (i32.shl (local.get $n) (i32.const 2)))
    (local.set $j (local.get $j0))
    (block $wide_done
      (loop $wide
        (br_if $wide_done (i32.gt_s (i32.add (local.get $j) (i32.const 32)) (local.get $j1)))
        (local.set $s0 (v128.const i64x2 0 0)) (local.set $s1 (v128.const i64x2 0 0))
        (local.set $s2 (v128.const i64x2 0 0)) (local.set $s3 (v128.const i64x2 0 0))
        (local.set $s4 (v128.const i64x2 0 0)) (local.set $s5 (v128.const i64x2 0 0))
        (local.set $s6 (v128.const i64x2 0 0)) (local.set $s7 (v128.const i64x2 0 0))
        (local.set $ap (local.get $a))
        (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $p (local.get $k))
        (loop $depth
          (local.set $x (v128.load32_splat (local.get $ap)))
          (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (local.get $x) (v128.load offset=0 (local.get $bp)))))
          (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul (local.get $x) (v128.load offset=16 (local.get $bp)))))
          (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (local.get $x) (v128.load offset=32 (local.get $bp)))))
          (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul (local.get $x) (v128.load offset=48 (local.get $bp)))))
          (local.set $s4 (f32x4.add (local.get $s4) (f32x4.mul (local.get $x) (v128.load offset=64 (local.get $bp)))))
          (local.set $s5 (f32x4.add (local.get $s5) (f32x4.mul (local.get $x) (v128.load offset=80 (local.get $bp)))))
          (local.set $s6 (f32x4.add (local.get $s6) (f32x4.mul (local.get $x) (v128.load offset=96 (local.get $bp)))))
          (local.set $s7 (f32x4.add (local.get $s7) (f32x4.mul (local.get $x) (v128.load offset=112 (local.get $bp)))))
          (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
          (local.set $bp (i32.add (local.get $bp) (local.get $stride)))
          (br_if $depth (local.tee $p (i32.sub (local.get $p) (i32.const 1)))))
        (local.set $cp (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
        (if (local.get $accumulate)
          (then
            (local.set $s0 (f32x4.add (local.get $s0) (v128.load offset=0 (local.get $cp))))
            (local.set $s1 (f32x4.add (local.get $s1) (v128.load offset=16 (local.get $cp))))
            (local.set $s2 (f32x4.add (local.get $s2) (v128.load offset=32 (local.get $cp))))
            (local.set $s3 (f32x4.add (local.get $s3) (v128.load offset=48 (local.get $cp))))
            (local.set $s4 (f32x4.add (local.get $s4) (v128.load offset=64 (local.get $cp))))
            (local.set $s5 (f32x4.add (local.get $s5) (v128.load offset=80 (local.get $cp))))
            (local.set $s6 (f32x4.add (local.get $s6) (v128.load offset=96 (local.get $cp))))
            (local.set $s7 (f32x4.add (local.get $s7) (v128.load offset=112 (local.get $cp))))))
        (v128.store offset=0 (local.get $cp) (local.get $s0))
        (v128.store offset=16 (local.get $cp) (local.get $s1))
        (v128.store offset=32 (local.get $cp) (local.get $s2))
        (v128.store offset=48 (local.get $cp) (local.get $s3))
        (v128.store offset=64 (local.get $cp) (local.get $s4))
        (v128.store offset=80 (local.get $cp) (local.get $s5))
        (v128.store offset=96 (local.get $cp) (local.get $s6))
        (v128.store offset=112 (local.get $cp) (local.get $s7))
        (local.set $j (i32.add (local.get $j) (i32.const 32)))
        (br $wide)))
    ;; Leftover columns, 4 at a time.
    (block $quad_done
      (loop $quad
        (br_if $quad_done (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $j1)))
        (local.set $s0 (v128.const i64x2 0 0))
        (local.set $ap (local.get $a))
        (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $p (local.get $k))
        (loop $depth
          (local.set $s0 (f32x4.add (local.get $s0)
            (f32x4.mul (v128.load32_splat (local.get $ap)) (v128.load (local.get $bp)))))
          (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
          (local.set $bp (i32.add (local.get $bp) (local.get $stride)))
          (br_if $depth (local.tee $p (i32.sub (local.get $p) (i32.const 1)))))
        (local.set $cp (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
        (if (local.get $accumulate)
          (then (local.set $s0 (f32x4.add (local.get $s0) (v128.load (local.get $cp))))))
        (v128.store (local.get $cp) (local.get $s0))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $quad)))
    ;; Last < 4 columns, scalar.
    (block $single_done
      (loop $single
        (br_if $single_done (i32.ge_s (local.get $j) (local.get $j1)))
        (local.set $sum (f32.const 0))
        (local.set $ap (local.get $a))
        (local.set $bp (i32.add (local.get $b) (i32.shl (local.get $j) (i32.const 2))))
        (local.set $p (local.get $k))
        (loop $depth
          (local.set $sum (f32.add (local.get $sum) (f32.mul (f32.load (local.get $ap)) (f32.load (local.get $bp)))))
          (local.set $ap (i32.add (local.get $ap) (i32.const 4)))
          (local.set $bp (i32.add (local.get $bp) (local.get $stride)))
          (br_if $depth (local.tee $p (i32.sub (local.get $p) (i32.const 1)))))
        (local.set $cp (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
        (if (local.get $accumulate)
          (then (local.set $sum (f32.add (local.get $sum) (f32.load (local.get $cp))))))
        (f32.store (local.get $cp) (local.get $sum))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $single))))

  ;; Horizontal sum of the four lanes.
  (func $hsum (param $v v128) (result f32)
    (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $v)) (f32x4.extract_lane 1 (local.get $v)))
      (f32.add (f32x4.extract_lane 2 (local.get $v)) (f32x4.extract_lane 3 (local.get $v)))))

  ;; B stored n×k (transB = 1): each output is a dot product of a with a row of B;
  ;; 4 rows at a time, 2 vectors deep, so 8 independent accumulators hide FMA latency.
  (func $gemvT (param $a i32) (param $b i32) (param $c i32) (param $n i32) (param $k i32)
               (param $accumulate i32) (param $j0 i32) (param $j1 i32)
    (local $j i32) (local $p i32) (local $rowBytes i32) (local $r0 i32) (local $r1 i32) (local $r2 i32) (local $r3 i32)
    (local $x v128) (local $y v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local $h0 f32) (local $h1 f32) (local $h2 f32) (local $h3 f32) (local $cp i32) (local $xs f32)
    (local.set $rowBytes (i32.shl (local.get $k) (i32.const 2)))
    (local.set $j (local.get $j0))
    (block $quad_done
      (loop $quad
        (br_if $quad_done (i32.gt_s (i32.add (local.get $j) (i32.const 4)) (local.get $j1)))
        (local.set $r0 (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $rowBytes))))
        (local.set $r1 (i32.add (local.get $r0) (local.get $rowBytes)))
        (local.set $r2 (i32.add (local.get $r1) (local.get $rowBytes)))
        (local.set $r3 (i32.add (local.get $r2) (local.get $rowBytes)))
        (local.set $s0 (v128.const i64x2 0 0)) (local.set $s1 (v128.const i64x2 0 0))
        (local.set $s2 (v128.const i64x2 0 0)) (local.set $s3 (v128.const i64x2 0 0))
        (local.set $t0 (v128.const i64x2 0 0)) (local.set $t1 (v128.const i64x2 0 0))
        (local.set $t2 (v128.const i64x2 0 0)) (local.set $t3 (v128.const i64x2 0 0))
        (local.set $p (i32.const 0))
        (block $pairs_done
          (loop $pairs
            (br_if $pairs_done (i32.gt_s (i32.add (local.get $p) (i32.const 8)) (local.get $k)))
            (local.set $x (v128.load offset=0 (i32.add (local.get $a) (i32.shl (local.get $p) (i32.const 2)))))
            (local.set $y (v128.load offset=16 (i32.add (local.get $a) (i32.shl (local.get $p) (i32.const 2)))))
            (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (local.get $x) (v128.load offset=0 (local.get $r0)))))
            (local.set $t0 (f32x4.add (local.get $t0) (f32x4.mul (local.get $y) (v128.load offset=16 (local.get $r0)))))
            (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul (local.get $x) (v128.load offset=0 (local.get $r1)))))
            (local.set $t1 (f32x4.add (local.get $t1) (f32x4.mul (local.get $y) (v128.load offset=16 (local.get $r1)))))
            (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (local.get $x) (v128.load offset=0 (local.get $r2)))))
            (local.set $t2 (f32x4.add (local.get $t2) (f32x4.mul (local.get $y) (v128.load offset=16 (local.get $r2)))))
            (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul (local.get $x) (v128.load offset=0 (local.get $r3)))))
            (local.set $t3 (f32x4.add (local.get $t3) (f32x4.mul (local.get $y) (v128.load offset=16 (local.get $r3)))))
            (local.set $r0 (i32.add (local.get $r0) (i32.const 32)))
            (local.set $r1 (i32.add (local.get $r1) (i32.const 32)))
            (local.set $r2 (i32.add (local.get $r2) (i32.const 32)))
            (local.set $r3 (i32.add (local.get $r3) (i32.const 32)))
            (local.set $p (i32.add (local.get $p) (i32.const 8)))
            (br $pairs)))
        (if (i32.le_s (i32.add (local.get $p) (i32.const 4)) (local.get $k))
          (then
            (local.set $x (v128.load (i32.add (local.get $a) (i32.shl (local.get $p) (i32.const 2)))))
            (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (local.get $x) (v128.load (local.get $r0)))))
            (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul (local.get $x) (v128.load (local.get $r1)))))
            (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (local.get $x) (v128.load (local.get $r2)))))
            (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul (local.get $x) (v128.load (local.get $r3)))))
            (local.set $r0 (i32.add (local.get $r0) (i32.const 16)))
            (local.set $r1 (i32.add (local.get $r1) (i32.const 16)))
            (local.set $r2 (i32.add (local.get $r2) (i32.const 16)))
            (local.set $r3 (i32.add (local.get $r3) (i32.const 16)))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))))
        (local.set $h0 (call $hsum (f32x4.add (local.get $s0) (local.get $t0))))
        (local.set $h1 (call $hsum (f32x4.add (local.get $s1) (local.get $t1))))
        (local.set $h2 (call $hsum (f32x4.add (local.get $s2) (local.get $t2))))
        (local.set $h3 (call $hsum (f32x4.add (local.get $s3) (local.get $t3))))
        (block $tail_done
          (loop $tail
            (br_if $tail_done (i32.ge_s (local.get $p) (local.get $k)))
            (local.set $xs (f32.load (i32.add (local.get $a) (i32.shl (local.get $p) (i32.const 2)))))
            (local.set $h0 (f32.add (local.get $h0) (f32.mul (local.get $xs) (f32.load (local.get $r0)))))
            (local.set $h1 (f32.add (local.get $h1) (f32.mul (local.get $xs) (f32.load (local.get $r1)))))
            (local.set $h2 (f32.add (local.get $h2) (f32.mul (local.get $xs) (f32.load (local.get $r2)))))
            (local.set $h3 (f32.add (local.get $h3) (f32.mul (local.get $xs) (f32.load (local.get $r3)))))
            (local.set $r0 (i32.add (local.get $r0) (i32.const 4)))
            (local.set $r1 (i32.add (local.get $r1) (i32.const 4)))
            (local.set $r2 (i32.add (local.get $r2) (i32.const 4)))
            (local.set $r3 (i32.add (local.get $r3) (i32.const 4)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $tail)))
        (local.set $cp (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
        (if (local.get $accumulate)
          (then
            (local.set $h0 (f32.add (local.get $h0) (f32.load offset=0 (local.get $cp))))
            (local.set $h1 (f32.add (local.get $h1) (f32.load offset=4 (local.get $cp))))
            (local.set $h2 (f32.add (local.get $h2) (f32.load offset=8 (local.get $cp))))
            (local.set $h3 (f32.add (local.get $h3) (f32.load offset=12 (local.get $cp))))))
        (f32.store offset=0 (local.get $cp) (local.get $h0))
        (f32.store offset=4 (local.get $cp) (local.get $h1))
        (f32.store offset=8 (local.get $cp) (local.get $h2))
        (f32.store offset=12 (local.get $cp) (local.get $h3))
        (local.set $j (i32.add (local.get $j) (i32.const 4)))
        (br $quad)))
    ;; Last < 4 outputs: one row at a time.
    (block $single_done
      (loop $single
        (br_if $single_done (i32.ge_s (local.get $j) (local.get $j1)))
        (local.set $r0 (i32.add (local.get $b) (i32.mul (local.get $j) (local.get $rowBytes))))
        (local.set $s0 (v128.const i64x2 0 0))
        (local.set $p (i32.const 0))
        (block $vec_done
          (loop $vec
            (br_if $vec_done (i32.gt_s (i32.add (local.get $p) (i32.const 4)) (local.get $k)))
            (local.set $s0 (f32x4.add (local.get $s0)
              (f32x4.mul (v128.load (i32.add (local.get $a) (i32.shl (local.get $p) (i32.const 2)))) (v128.load (local.get $r0)))))
            (local.set $r0 (i32.add (local.get $r0) (i32.const 16)))
            (local.set $p (i32.add (local.get $p) (i32.const 4)))
            (br $vec)))
        (local.set $h0 (call $hsum (local.get $s0)))
        (block $tail_done
          (loop $tail
            (br_if $tail_done (i32.ge_s (local.get $p) (local.get $k)))
            (local.set $h0 (f32.add (local.get $h0)
              (f32.mul (f32.load (i32.add (local.get $a) (i32.shl (local.get $p) (i32.const 2)))) (f32.load (local.get $r0)))))
            (local.set $r0 (i32.add (local.get $r0) (i32.const 4)))
            (local.set $p (i32.add (local.get $p) (i32.const 1)))
            (br $tail)))
        (local.set $cp (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
        (if (local.get $accumulate)
          (then (local.set $h0 (f32.add (local.get $h0) (f32.load (local.get $cp))))))
        (f32.store (local.get $cp) (local.get $h0))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $single))))

  ;; Rows [r0, r1) of C (+)= op(A) · op(B) restricted to columns [j0, j1), one row at a
  ;; time with the gemv kernels above. op(A)'s rows must be contiguous: !transA or m = 1.
  ;; Threads split thin products by columns.
  (func (export "gemv") (param $a i32) (param $b i32) (param $c i32)
        (param $m i32) (param $n i32) (param $k i32) (param $transB i32) (param $accumulate i32)
        (param $r0 i32) (param $r1 i32) (param $j0 i32) (param $j1 i32)
    (local $i i32) (local $ai i32) (local $ci i32)
    (if (i32.or (i32.le_s (local.get $r1) (local.get $r0)) (i32.le_s (local.get $j1) (local.get $j0))) (then (return)))
    (local.set $i (local.get $r0))
    (loop $each_row
      (local.set $ai (i32.add (local.get $a) (i32.shl (i32.mul (local.get $i) (local.get $k)) (i32.const 2))))
      (local.set $ci (i32.add (local.get $c) (i32.shl (i32.mul (local.get $i) (local.get $n)) (i32.const 2))))
      (if (i32.eqz (local.get $k))
        (then
          (if (i32.eqz (local.get $accumulate))
            (then (memory.fill
              (i32.add (local.get $ci) (i32.shl (local.get $j0) (i32.const 2)))
              (i32.const 0)
              (i32.shl (i32.sub (local.get $j1) (local.get $j0)) (i32.const 2))))))
        (else
          (if (local.get $transB)
            (then (call $gemvT (local.get $ai) (local.get $b) (local.get $ci) (local.get $n) (local.get $k)
              (local.get $accumulate) (local.get $j0) (local.get $j1)))
            (else (call $gemvN (local.get $ai) (local.get $b) (local.get $ci) (local.get $n) (local.get $k)
              (local.get $accumulate) (local.get $j0) (local.get $j1))))))
      (br_if $each_row (i32.lt_s (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $r1)))))

  ;; ---- Packed single-row products for the decode path (src/engine/decode.ts) ----
  ;; A decode step multiplies one row by every weight matrix, so it streams the whole
  ;; model from cache or memory once per token. Row-major W [n, k] read 4 or 8 rows at a
  ;; time is 4-8 interleaved streams, which the prefetchers serve about 3x slower than one
  ;; sequential stream; pack8 rearranges W once (per generate call) into 8-row panels,
  ;; [n/8][k/4][8][4], so gemv8 reads it strictly in order with one pointer.

  ;; Horizontal sums of four vectors, as one vector [Σa, Σb, Σc, Σd].
  (func $sum4 (param $a v128) (param $b v128) (param $c v128) (param $d v128) (result v128)
    (local $ab v128) (local $cd v128)
    (local.set $ab (f32x4.add
      (i8x16.shuffle 0 1 2 3 16 17 18 19 8 9 10 11 24 25 26 27 (local.get $a) (local.get $b))
      (i8x16.shuffle 4 5 6 7 20 21 22 23 12 13 14 15 28 29 30 31 (local.get $a) (local.get $b))))
    (local.set $cd (f32x4.add
      (i8x16.shuffle 0 1 2 3 16 17 18 19 8 9 10 11 24 25 26 27 (local.get $c) (local.get $d))
      (i8x16.shuffle 4 5 6 7 20 21 22 23 12 13 14 15 28 29 30 31 (local.get $c) (local.get $d))))
    (f32x4.add
      (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $ab) (local.get $cd))
      (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $ab) (local.get $cd))))

  ;; dst = W [n, k] (row-major, k a multiple of 4) as 8-row panels [ceil(n/8)][k/4][8][4];
  ;; rows past n are zeros.
  (func (export "pack8") (param $src i32) (param $dst i32) (param $n i32) (param $k i32)
    (local $j i32) (local $r i32) (local $c i32) (local $rb i32) (local $row i32)
    (local.set $rb (i32.shl (local.get $k) (i32.const 2)))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $j) (local.get $n)))
      (local.set $c (i32.const 0))
      (block $c_done (loop $c_each
        (br_if $c_done (i32.ge_s (local.get $c) (local.get $rb)))
        (local.set $r (i32.const 0))
        (loop $r_each
          (local.set $row (i32.add (local.get $j) (local.get $r)))
          (if (i32.lt_s (local.get $row) (local.get $n))
            (then (v128.store (local.get $dst)
              (v128.load (i32.add (i32.add (local.get $src) (i32.mul (local.get $row) (local.get $rb))) (local.get $c)))))
            (else (v128.store (local.get $dst) (v128.const i64x2 0 0))))
          (local.set $dst (i32.add (local.get $dst) (i32.const 16)))
          (br_if $r_each (i32.lt_s (local.tee $r (i32.add (local.get $r) (i32.const 1))) (i32.const 8))))
        (local.set $c (i32.add (local.get $c) (i32.const 16)))
        (br $c_each)))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $each))))

  ;; c[0, 8·ceil(n/8)) (+)= a[0, k) · Wᵀ with W packed by pack8 (k a multiple of 4, > 0);
  ;; c must have room for the padded tail.
  (func $gemv8 (export "gemv8") (param $a i32) (param $b i32) (param $c i32) (param $n i32) (param $k i32)
        (param $accumulate i32)
    (local $j i32) (local $cp i32) (local $ap i32) (local $aend i32) (local $bp i32) (local $x v128)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128)
    (local $s4 v128) (local $s5 v128) (local $s6 v128) (local $s7 v128)
    (local $lo v128) (local $hi v128)
    (local.set $bp (local.get $b))
    (local.set $aend (i32.add (local.get $a) (i32.shl (local.get $k) (i32.const 2))))
    (block $done (loop $each
      (br_if $done (i32.ge_s (local.get $j) (local.get $n)))
      (local.set $s0 (v128.const i64x2 0 0)) (local.set $s1 (v128.const i64x2 0 0))
      (local.set $s2 (v128.const i64x2 0 0)) (local.set $s3 (v128.const i64x2 0 0))
      (local.set $s4 (v128.const i64x2 0 0)) (local.set $s5 (v128.const i64x2 0 0))
      (local.set $s6 (v128.const i64x2 0 0)) (local.set $s7 (v128.const i64x2 0 0))
      (local.set $ap (local.get $a))
      (loop $depth
        (local.set $x (v128.load (local.get $ap)))
        (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (local.get $x) (v128.load offset=0 (local.get $bp)))))
        (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul (local.get $x) (v128.load offset=16 (local.get $bp)))))
        (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (local.get $x) (v128.load offset=32 (local.get $bp)))))
        (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul (local.get $x) (v128.load offset=48 (local.get $bp)))))
        (local.set $s4 (f32x4.add (local.get $s4) (f32x4.mul (local.get $x) (v128.load offset=64 (local.get $bp)))))
        (local.set $s5 (f32x4.add (local.get $s5) (f32x4.mul (local.get $x) (v128.load offset=80 (local.get $bp)))))
        (local.set $s6 (f32x4.add (local.get $s6) (f32x4.mul (local.get $x) (v128.load offset=96 (local.get $bp)))))
        (local.set $s7 (f32x4.add (local.get $s7) (f32x4.mul (local.get $x) (v128.load offset=112 (local.get $bp)))))
        (local.set $bp (i32.add (local.get $bp) (i32.const 128)))
        (br_if $depth (i32.lt_u (local.tee $ap (i32.add (local.get $ap) (i32.const 16))) (local.get $aend))))
      (local.set $cp (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
      (local.set $lo (call $sum4 (local.get $s0) (local.get $s1) (local.get $s2) (local.get $s3)))
      (local.set $hi (call $sum4 (local.get $s4) (local.get $s5) (local.get $s6) (local.get $s7)))
      (if (local.get $accumulate)
        (then
          (local.set $lo (f32x4.add (local.get $lo) (v128.load offset=0 (local.get $cp))))
          (local.set $hi (f32x4.add (local.get $hi) (v128.load offset=16 (local.get $cp))))))
      (v128.store offset=0 (local.get $cp) (local.get $lo))
      (v128.store offset=16 (local.get $cp) (local.get $hi))
      (local.set $j (i32.add (local.get $j) (i32.const 8)))
      (br $each))))

  ;; c[j0, j1) (+)= a[0, k) · Wᵀ for row-major W [n, k] (k a multiple of 4), one row at a
  ;; time: consecutive rows are consecutive memory, so W is read as one sequential stream
  ;; (gemvT's 4 interleaved rows come out of DRAM about 1.5x slower). For models too large
  ;; for gemv8's repacked copy; threads split the rows.
  (func (export "gemvRows") (param $a i32) (param $b i32) (param $c i32) (param $n i32) (param $k i32)
        (param $accumulate i32) (param $j0 i32) (param $j1 i32)
    (local $j i32) (local $bp i32) (local $ap i32) (local $aend i32) (local $a16 i32) (local $cp i32)
    (local $s0 v128) (local $s1 v128) (local $s2 v128) (local $s3 v128) (local $h f32)
    (if (i32.le_s (local.get $j1) (local.get $j0)) (then (return)))
    (local.set $aend (i32.add (local.get $a) (i32.shl (local.get $k) (i32.const 2))))
    (local.set $a16 (i32.add (local.get $a) (i32.shl (i32.and (local.get $k) (i32.const -16)) (i32.const 2))))
    (local.set $bp (i32.add (local.get $b) (i32.shl (i32.mul (local.get $j0) (local.get $k)) (i32.const 2))))
    (local.set $j (local.get $j0))
    (loop $each
      (local.set $s0 (v128.const i64x2 0 0)) (local.set $s1 (v128.const i64x2 0 0))
      (local.set $s2 (v128.const i64x2 0 0)) (local.set $s3 (v128.const i64x2 0 0))
      (local.set $ap (local.get $a))
      (block $wide_done (loop $wide
        (br_if $wide_done (i32.ge_u (local.get $ap) (local.get $a16)))
        (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (v128.load offset=0 (local.get $ap)) (v128.load offset=0 (local.get $bp)))))
        (local.set $s1 (f32x4.add (local.get $s1) (f32x4.mul (v128.load offset=16 (local.get $ap)) (v128.load offset=16 (local.get $bp)))))
        (local.set $s2 (f32x4.add (local.get $s2) (f32x4.mul (v128.load offset=32 (local.get $ap)) (v128.load offset=32 (local.get $bp)))))
        (local.set $s3 (f32x4.add (local.get $s3) (f32x4.mul (v128.load offset=48 (local.get $ap)) (v128.load offset=48 (local.get $bp)))))
        (local.set $ap (i32.add (local.get $ap) (i32.const 64)))
        (local.set $bp (i32.add (local.get $bp) (i32.const 64)))
        (br $wide)))
      (block $quad_done (loop $quad
        (br_if $quad_done (i32.ge_u (local.get $ap) (local.get $aend)))
        (local.set $s0 (f32x4.add (local.get $s0) (f32x4.mul (v128.load (local.get $ap)) (v128.load (local.get $bp)))))
        (local.set $ap (i32.add (local.get $ap) (i32.const 16)))
        (local.set $bp (i32.add (local.get $bp) (i32.const 16)))
        (br $quad)))
      (local.set $h (call $hsum (f32x4.add (f32x4.add (local.get $s0) (local.get $s1)) (f32x4.add (local.get $s2) (local.get $s3)))))
      (local.set $cp (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
      (if (local.get $accumulate) (then (local.set $h (f32.add (local.get $h) (f32.load (local.get $cp))))))
      (f32.store (local.get $cp) (local.get $h))
      (br_if $each (i32.lt_s (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $j1)))))

  ;; gemv8 on 8-row panels [p0, p1) only (threads split the panels).
  (func (export "gemv8Range") (param $a i32) (param $b i32) (param $c i32) (param $n i32) (param $k i32)
        (param $accumulate i32) (param $p0 i32) (param $p1 i32)
    (local $rows i32)
    (if (i32.le_s (local.get $p1) (local.get $p0)) (then (return)))
    (local.set $rows (i32.sub (i32.shl (local.get $p1) (i32.const 3)) (i32.shl (local.get $p0) (i32.const 3))))
    (call $gemv8
      (local.get $a)
      (i32.add (local.get $b) (i32.shl (i32.mul (i32.shl (local.get $p0) (i32.const 3)) (local.get $k)) (i32.const 2)))
      (i32.add (local.get $c) (i32.shl (i32.shl (local.get $p0) (i32.const 3)) (i32.const 2)))
      (local.get $rows) (local.get $k) (local.get $accumulate)))

  ;; ---- x · Wᵀ without packing W (nn.Linear: x [m, k] row-major, W [n, k] row-major) ----
  ;; gemm would pack W into 8-column strips on every call: for a prefill (m a few hundred
  ;; tokens, W megabytes) that transpose is a quarter of the time. Here W is the
  ;; broadcast side instead: each depth step splats W[j..j+3, p] straight from 4 rows of W
  ;; (a 4-row × KC block, 4 KB, stays in L1 while every 8-token strip of x passes by),
  ;; and only x is packed (small). Every C element is still Σ_p over KC blocks in order,
  ;; each block's sum added to C once, with the same products (x·w = w·x), so C is
  ;; bit-identical to gemm's.

  ;; 4 W rows ($w, row stride $ldw bytes) × 8 tokens (packed strip $bp, kc steps of 8);
  ;; adds the 4×8 block, transposed, to C[tokens, j..j+3] at $c (row stride $ldc floats).
  ;; $rows ≤ 4 valid W rows (the rest alias row 0 and are dropped), $cols ≤ 8 valid tokens.
  (func $microNT (param $w i32) (param $ldw i32) (param $bp i32) (param $kc i32) (param $c i32) (param $ldc i32)
                 (param $rows i32) (param $cols i32) (param $edge i32)
    (local $c00 v128) (local $c01 v128)
    (local $c10 v128) (local $c11 v128)
    (local $c20 v128) (local $c21 v128)
    (local $c30 v128) (local $c31 v128)
    (local $b0 v128) (local $b1 v128) (local $a v128)
    (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $i i32) (local $j i32) (local $row i32) (local $stride i32) (local $t i32)
    (local.set $w1 (select (i32.add (local.get $w) (local.get $ldw)) (local.get $w) (i32.gt_s (local.get $rows) (i32.const 1))))
    (local.set $w2 (select (i32.add (local.get $w) (i32.shl (local.get $ldw) (i32.const 1))) (local.get $w)
      (i32.gt_s (local.get $rows) (i32.const 2))))
    (local.set $w3 (select (i32.add (local.get $w) (i32.mul (local.get $ldw) (i32.const 3))) (local.get $w)
      (i32.gt_s (local.get $rows) (i32.const 3))))
    (loop $depth
      (local.set $b0 (v128.load offset=0 (local.get $bp)))
      (local.set $b1 (v128.load offset=16 (local.get $bp)))
      (local.set $a (v128.load32_splat (local.get $w)))
      (local.set $c00 (f32x4.add (local.get $c00) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c01 (f32x4.add (local.get $c01) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat (local.get $w1)))
      (local.set $c10 (f32x4.add (local.get $c10) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c11 (f32x4.add (local.get $c11) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat (local.get $w2)))
      (local.set $c20 (f32x4.add (local.get $c20) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c21 (f32x4.add (local.get $c21) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $a (v128.load32_splat (local.get $w3)))
      (local.set $c30 (f32x4.add (local.get $c30) (f32x4.mul (local.get $a) (local.get $b0))))
      (local.set $c31 (f32x4.add (local.get $c31) (f32x4.mul (local.get $a) (local.get $b1))))
      (local.set $w (i32.add (local.get $w) (i32.const 4)))
      (local.set $w1 (i32.add (local.get $w1) (i32.const 4)))
      (local.set $w2 (i32.add (local.get $w2) (i32.const 4)))
      (local.set $w3 (i32.add (local.get $w3) (i32.const 4)))
      (local.set $bp (i32.add (local.get $bp) (i32.const 32)))
      (br_if $depth (local.tee $kc (i32.sub (local.get $kc) (i32.const 1)))))
    ;; Transpose through $edge: [0, 128) the accumulators by W row, [128, 256) by token.
    (v128.store offset=0 (local.get $edge) (local.get $c00))
    (v128.store offset=16 (local.get $edge) (local.get $c10))
    (v128.store offset=32 (local.get $edge) (local.get $c20))
    (v128.store offset=48 (local.get $edge) (local.get $c30))
    (v128.store offset=64 (local.get $edge) (local.get $c01))
    (v128.store offset=80 (local.get $edge) (local.get $c11))
    (v128.store offset=96 (local.get $edge) (local.get $c21))
    (v128.store offset=112 (local.get $edge) (local.get $c31))
    (local.set $t (i32.add (local.get $edge) (i32.const 128)))
    (call $transpose4 (local.get $edge) (i32.add (local.get $edge) (i32.const 16))
      (i32.add (local.get $edge) (i32.const 32)) (i32.add (local.get $edge) (i32.const 48))
      (local.get $t) (i32.const 16))
    (call $transpose4 (i32.add (local.get $edge) (i32.const 64)) (i32.add (local.get $edge) (i32.const 80))
      (i32.add (local.get $edge) (i32.const 96)) (i32.add (local.get $edge) (i32.const 112))
      (i32.add (local.get $t) (i32.const 64)) (i32.const 16))
    (local.set $stride (i32.shl (local.get $ldc) (i32.const 2)))
    (if (i32.eq (local.get $rows) (i32.const 4))
      (then
        (loop $each_token
          (v128.store (local.get $c) (f32x4.add (v128.load (local.get $c)) (v128.load (local.get $t))))
          (local.set $c (i32.add (local.get $c) (local.get $stride)))
          (local.set $t (i32.add (local.get $t) (i32.const 16)))
          (br_if $each_token (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $cols))))
        (return)))
    (loop $each_row
      (local.set $j (i32.const 0))
      (local.set $row (i32.add (local.get $t) (i32.shl (local.get $i) (i32.const 4))))
      (loop $each_col
        (f32.store (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2)))
          (f32.add
            (f32.load (i32.add (local.get $c) (i32.shl (local.get $j) (i32.const 2))))
            (f32.load (i32.add (local.get $row) (i32.shl (local.get $j) (i32.const 2))))))
        (br_if $each_col (i32.lt_u (local.tee $j (i32.add (local.get $j) (i32.const 1))) (local.get $rows))))
      (local.set $c (i32.add (local.get $c) (local.get $stride)))
      (br_if $each_row (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $cols)))))

  ;; Columns [j0, j1) of C[m×n] (+)= x[m×k] · W[n×k]ᵀ (j0 a multiple of 4). Threads
  ;; split the columns (= rows of W). x is packed as gemm's op(B) would be (8-token
  ;; strips): by the caller for every thread at once when $prepacked ≠ 0 (packBAll of x
  ;; with transB), else block by block into $scratch. The transpose buffer follows the
  ;; [KC depths × NC tokens] block in $scratch.
  (func (export "gemmNT") (param $x i32) (param $w i32) (param $c i32)
        (param $m i32) (param $n i32) (param $k i32) (param $accumulate i32)
        (param $j0 i32) (param $j1 i32) (param $scratch i32) (param $prepacked i32)
    (local $packed i32) (local $edge i32) (local $ic i32) (local $mc i32) (local $pc i32) (local $kc i32)
    (local $jr i32) (local $s i32) (local $rows i32) (local $cols i32) (local $row i32) (local $ldw i32)
    (if (i32.or (i32.le_s (local.get $j1) (local.get $j0)) (i32.le_s (local.get $m) (i32.const 0))) (then (return)))
    (if (i32.eqz (local.get $accumulate))
      (then
        (loop $zero_rows
          (memory.fill
            (i32.add (local.get $c) (i32.shl
              (i32.add (i32.mul (local.get $row) (local.get $n)) (local.get $j0)) (i32.const 2)))
            (i32.const 0)
            (i32.shl (i32.sub (local.get $j1) (local.get $j0)) (i32.const 2)))
          (br_if $zero_rows (i32.lt_s (local.tee $row (i32.add (local.get $row) (i32.const 1))) (local.get $m))))))
    (if (i32.eqz (local.get $k)) (then (return)))
    (local.set $packed (local.get $scratch))
    (local.set $edge (i32.add (local.get $scratch) (i32.shl (i32.mul (global.get $KC) (global.get $NC)) (i32.const 2))))
    (local.set $ldw (i32.shl (local.get $k) (i32.const 2)))
    (loop $each_ic
      (local.set $mc (select (global.get $NC) (i32.sub (local.get $m) (local.get $ic))
        (i32.lt_s (global.get $NC) (i32.sub (local.get $m) (local.get $ic)))))
      (local.set $pc (i32.const 0))
      (loop $each_pc
        (local.set $kc (select (global.get $KC) (i32.sub (local.get $k) (local.get $pc))
          (i32.lt_s (global.get $KC) (i32.sub (local.get $k) (local.get $pc)))))
        ;; x's tokens [ic, ic+mc) as gemm's op(B) columns: 8-token strips, kc steps each.
        (if (local.get $prepacked)
          (then (local.set $packed (i32.add (local.get $prepacked)
            (call $panelOffset (local.get $ic) (local.get $pc) (local.get $k) (local.get $mc)))))
          (else (call $packB (local.get $x) (local.get $packed) (local.get $m) (local.get $k) (i32.const 1)
            (local.get $pc) (local.get $kc) (local.get $ic) (local.get $mc))))
        (local.set $jr (local.get $j0))
        (loop $each_jr
          (local.set $rows (select (i32.const 4) (i32.sub (local.get $j1) (local.get $jr))
            (i32.lt_s (i32.const 4) (i32.sub (local.get $j1) (local.get $jr)))))
          (local.set $s (i32.const 0))
          (loop $each_strip
            (local.set $cols (select (i32.const 8) (i32.sub (local.get $mc) (local.get $s))
              (i32.lt_s (i32.const 8) (i32.sub (local.get $mc) (local.get $s)))))
            (call $microNT
              (i32.add (local.get $w) (i32.shl (i32.add (i32.mul (local.get $jr) (local.get $k)) (local.get $pc)) (i32.const 2)))
              (local.get $ldw)
              (i32.add (local.get $packed) (i32.mul (local.get $s) (i32.shl (local.get $kc) (i32.const 2))))
              (local.get $kc)
              (i32.add (local.get $c) (i32.shl
                (i32.add (i32.mul (i32.add (local.get $ic) (local.get $s)) (local.get $n)) (local.get $jr))
                (i32.const 2)))
              (local.get $n) (local.get $rows) (local.get $cols) (local.get $edge))
            (br_if $each_strip (i32.lt_s (local.tee $s (i32.add (local.get $s) (i32.const 8))) (local.get $mc))))
          (br_if $each_jr (i32.lt_s (local.tee $jr (i32.add (local.get $jr) (i32.const 4))) (local.get $j1))))
        (br_if $each_pc (i32.lt_s (local.tee $pc (i32.add (local.get $pc) (global.get $KC))) (local.get $k))))
      (br_if $each_ic (i32.lt_s (local.tee $ic (i32.add (local.get $ic) (global.get $NC))) (local.get $m)))))
)
