"""The sample loop shared by encoder and decoder: predict, quantize, code, learn.

One numba function, :func:`code_rows`, runs both directions (``enc`` flag), so the encoder and
the decoder execute the same arithmetic in the same order by construction. Per sample:

1. fixed integer predictors: spatial ones, and inter-channel ones (the co-located sample of
   an already coded channel plus a prediction of the difference plane), and an online
   least-squares predictor (:mod:`ols`) over the causal neighbourhood of this and the
   other channels, one model per channel and pixel phase;
2. blend weighted by 1/(recent local error)^2 of each predictor (TMW/GLICBAWLS style); the
   error window covers nearby samples, a decayed column history and the same predictor's
   error on the already coded channel of this pixel;
3. residual -> near-lossless quantization (step 2K+1) -> binary decisions (zero flag, unary
   exponent bucket, mantissa bits, sign), each coded by :func:`models.code_decision` from
   20 context models: local residual energy, the blend's expected error, neighbour residual
   patterns, the co-located residual of the reference channel, the prediction's fraction, the
   pixel phase and, most valuable, where each of several individual predictors (the OLS one
   among them) lies relative to the blend (their disagreement tells both the likely magnitude
   and the likely sign);
4. reconstruction (clamped), error bookkeeping, OLS update.

A CALIC-style bias correction of the blended prediction was measured and removed: with the
disagreement contexts it made files 0.4 % larger (they model the bias per context already).

All state lives in arrays owned by :class:`State` so coding can proceed in row blocks (for
progress reports and buffer growth) without losing anything between calls.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from .models import MIX_STRIDE, code_decision, init_apm, rate_table
from .ols import N_PHASE, NF_MAX, SOLVE_EVERY, features
from .ols import predict as ols_predict
from .ols import update as ols_update
from .predictors import N_INTER, N_SPATIAL, NP_MAX, fetch, inter, spatial
from .prefetch import aligned_full, prefetch
from .tables import RECIPROCAL, SQUASH, STRETCH

# decision nodes: 0 zero flag, 1..16 unary, 17..20 sign, 21..80 mantissa (13 + 4 kb + state,
# kb >= 2). The frequent ones (zero flag, short unary codes; signs, short mantissas) share
# the first two 64-byte lines of a context's 4-byte counters, and NNODE, a multiple of 16,
# keeps every context's block of counters line-aligned.
NNODE = 96
NODE_UNARY = 1
NODE_SIGN = 17
NODE_MANT = 13
NCTX = np.array(
    [96, 144, 192, 384, 324, 243, 4, 576, 729, 972, 4374, 3750, 156, 156, 156, 156, 156, 156,
     1521, 312],
    dtype=np.int64,
)  # fmt: skip
NM = NCTX.shape[0]
# first-layer mixers, number of weight sets of each: energy x pixel phase, blend error,
# W/N predictor positions, reference-predictor position with the reference residual
MIX_SETS = np.array([24, 24, 169, 104], dtype=np.int64)
F_SETS = 6  # second-layer mixer weight sets (energy)
# APM contexts: energy x pixel phase, W/N predictor positions, OLS position x blend error
APM_CTX = np.array([96, 81, 156], dtype=np.int64)
PI_NOREF = np.array([2, 3, 6, 7, 8, 10])
PI_REF = np.array([N_SPATIAL + i for i in range(4)] + [2, 3])
N_E = 24  # levels of the quantized error energy
LIMITS = np.full(NCTX.shape[0], 1023, dtype=np.int64)
# tunable integers (part of the format: changing one changes every payload)
# first-layer mixer learning rate, blend epsilon (1/16 units), column-error decay (/8),
# weight of the reference channel's co-located predictor errors in the blend, second-layer
# mixer learning rate
PARAMS = np.array([12, 32, 6, 4, 2], dtype=np.int64)
NP_ALL = NP_MAX + 1  # the fixed predictors + the OLS predictor
MAX_BYTES_PER_SAMPLE = 60  # worst case: 36 decisions x 12 bits, rounded up


@njit(cache=True)
def lq(v: int) -> int:
    """Log-like quantizer: 0,1,2,3, then two levels per octave."""
    if v < 4:
        return v
    b = 0
    t = v
    while t > 1:
        t >>= 1
        b += 1
    return 2 * b + ((v >> (b - 1)) & 1)


@njit(cache=True)
def qd(d: int, sg: int, step: int) -> int:
    """Signed 9-level quantization of a prediction difference (1/16 units) in the residual's
    flipped orientation: 0 for |d| < 1/2 sample step, then 4 levels per sign."""
    v = (d * sg) >> 3 if step == 1 else (d * sg) // (8 * step)  # lossless: no division
    if v == 0:
        return 4
    m = abs(v)
    lv = 1 if m < 2 else (2 if m < 4 else (3 if m < 12 else 4))
    return 4 + lv if v > 0 else 4 - lv


@njit(cache=True)
def qd13(d: int, sg: int, step: int) -> int:
    """Signed 13-level log quantization of a prediction difference (in 1/4 sample steps)."""
    v = (d * sg) >> 2 if step == 1 else (d * sg) // (4 * step)
    if v == 0:
        return 6
    m = abs(v)
    lv = 1
    while m > 1 and lv < 6:
        m >>= 1
        lv += 1
    return 6 + lv if v > 0 else 6 - lv


@njit(cache=True)
def clip2(v: int) -> int:
    """Clamp to [-2, 2] and shift to 0..4."""
    if v > 2:
        return 4
    if v < -2:
        return 0
    return v + 2


@njit(cache=True)
def bitlen(v: int) -> int:
    b = 0
    while v > 0:
        v >>= 1
        b += 1
    return b


@njit(cache=True)
def code_rows(
    enc,
    y0,
    y1,
    img,
    rec,
    order,
    ref1,
    ref2,
    others,
    maxval,
    near,
    errb,
    resb,
    cm,
    limits,
    mix_w,
    mix_f,
    apm,
    st,
    buf,
    stretch,
    squash,
    recip,
    nctx,
    cbase,
    mix_sets,
    mbase,
    apm_ctx,
    abase,
    params,
    vacc,
    ols_a,
    ols_b,
    ols_w,
    ols_n,
):
    """Code rows [y0, y1) of ``rec`` (decoder: fill it; encoder: mirror ``img`` into it).

    Arguments are the image, the channel plan and every adaptive table (see :class:`State`);
    they are passed explicitly because numba functions cannot hold Python objects.
    """
    nm = nctx.shape[0]
    nmix = mix_sets.shape[0]
    napm = apm_ctx.shape[0]
    npa = errb.shape[3]
    i64 = np.int64
    _rows(
        enc,
        y0,
        y1,
        img,
        rec,
        order,
        ref1,
        ref2,
        others,
        maxval,
        near,
        errb,
        resb,
        cm,
        limits,
        mix_w,
        mix_f,
        apm,
        st,
        buf,
        stretch,
        squash,
        recip,
        nctx,
        cbase,
        mix_sets,
        mbase,
        apm_ctx,
        abase,
        params,
        vacc,
        ols_a,
        ols_b,
        ols_w,
        ols_n,
        np.zeros(8, dtype=i64),
        np.zeros(8, dtype=i64),
        np.zeros(npa, dtype=i64),
        np.zeros(npa, dtype=i64),
        np.zeros(NF_MAX, dtype=i64),
        np.zeros(NF_MAX, dtype=np.int32),
        np.zeros(NF_MAX, dtype=i64),
        np.zeros(2, dtype=i64),
        np.zeros(nm, dtype=i64),
        np.zeros(nm + 1, dtype=np.int32),  # mixer inputs: int32 x int32 products vectorize
        np.zeros(nmix, dtype=i64),
        np.zeros(nmix, dtype=i64),
        np.zeros(napm, dtype=i64),
        np.zeros(napm, dtype=i64),
        np.zeros(napm, dtype=i64),
        np.zeros(nmix + 1, dtype=i64),
        np.zeros(nmix, dtype=i64),
        rate_table(params[0]),
    )


@njit(cache=True, _nrt=False)
def _rows(
    enc,
    y0,
    y1,
    img,
    rec,
    order,
    ref1,
    ref2,
    others,
    maxval,
    near,
    errb,
    resb,
    cm,
    limits,
    mix_w,
    mix_f,
    apm,
    st,
    buf,
    stretch,
    squash,
    recip,
    nctx,
    cbase,
    mix_sets,
    mbase,
    apm_ctx,
    abase,
    params,
    vacc,
    ols_a,
    ols_b,
    ols_w,
    ols_n,
    nb,
    rb,
    preds,
    ssum,
    fv,
    gsc,
    hsc,
    refs,
    ctxoff,
    xin,
    mx,
    msel,
    ax,
    asel,
    akn,
    fx,
    pr,
    rates,
):
    """The body of :func:`code_rows`; the last arguments are scratch vectors and the
    mixers' learning-rate table.

    Compiled without numba's reference counting (``_nrt=False``): it allocates nothing, and
    with counting on, every inlined decision paid some 40 atomic increments and decrements
    of its array arguments' reference counts (about 10 % of the coding time).
    """
    _, width, nch = rec.shape
    mid = (maxval + 1) >> 1
    gap_shift = bitlen(maxval) - 8
    step = 2 * near + 1
    maxmag = maxval if near == 0 else (maxval + near) // step
    kmax = bitlen(maxmag - 1)
    maxp = maxval * 16
    nm = nctx.shape[0]
    blend_c = params[1]
    bl_vd = params[2]
    bl_xw = params[3]
    f_lr = params[4]
    cs = gap_shift if gap_shift > 0 else 0
    nmix = mix_sets.shape[0]
    napm = apm_ctx.shape[0]
    cmf = cm.reshape(cm.size)  # the same counters, flat (for the prefetch hints)
    for y in range(y0, y1):
        cur = y & 1
        prv = cur ^ 1
        r0 = y % 3
        r1 = (y + 2) % 3
        r2 = (y + 1) % 3
        for x in range(width):
            for k in range(nch):
                c = order[k]
                par = (x & 1) + 2 * (y & 1)
                fetch(rec, y, x, c, width, mid, nb)
                spatial(nb, gap_shift, preds)
                npr = N_SPATIAL
                a = ref1[k]
                qref = 0
                if a >= 0:
                    fetch(rec, y, x, a, width, mid, rb)
                    inter(nb, rb, rec[y, x, a], preds, npr)
                    npr += N_INTER
                    ka = 0
                    for kk in range(nch):
                        if order[kk] == a:
                            ka = kk
                    qref = resb[r0, x, ka]
                a2 = ref2[k]
                ka2 = 0
                if a2 >= 0:
                    for kk in range(nch):
                        if order[kk] == a2:
                            ka2 = kk
                    fetch(rec, y, x, a2, width, mid, rb)
                    inter(nb, rb, rec[y, x, a2], preds, npr)
                    npr += N_INTER
                # residual neighbourhood (quantized residuals, signed, unflipped)
                qw = resb[r0, x - 1, k] if x > 0 else 0
                qww = resb[r0, x - 2, k] if x > 1 else 0
                qn = resb[r1, x, k] if y > 0 else 0
                qnw = resb[r1, x - 1, k] if (y > 0 and x > 0) else 0
                qne = resb[r1, x + 1, k] if (y > 0 and x + 1 < width) else 0
                qnn = resb[r2, x, k] if y > 1 else 0
                energy = 2 * abs(qw) + 2 * abs(qn) + abs(qnw) + abs(qne) + abs(qww) + abs(qnn)
                if a >= 0:
                    energy += 2 * abs(qref)
                le = lq(energy)
                if le > N_E - 1:
                    le = N_E - 1
                # the OLS predictor, one model per channel and pixel phase
                refs[0] = a
                refs[1] = a2
                nf, w0 = features(rec, y, x, c, refs, others, k, width, mid, fv)
                mo = k * N_PHASE + par
                po = ols_predict(ols_w, mo, fv, nf, w0)
                if po < 0:
                    po = 0
                elif po > maxp:
                    po = maxp
                io = npr
                preds[io] = po
                npr += 1
                # blend by recent local errors. The window's weights are 0 where a neighbour
                # is missing and its indices are clamped, so the loop over the predictors has
                # no branches and vectorizes (same integer sums as testing each term)
                cw = 2 if x > 0 else 0
                cn = 2 if y > 0 else 0
                cnw = 1 if y > 0 and x > 0 else 0
                cne = 1 if y > 0 and x + 1 < width else 0
                cww = 1 if x > 1 else 0
                cnee = 1 if y > 0 and x + 2 < width else 0
                xm1 = x - 1 if x > 0 else x
                xm2 = x - 2 if x > 1 else x
                xp1 = x + 1 if x + 1 < width else x
                xp2 = x + 2 if x + 2 < width else x
                for i in range(npr):
                    ssum[i] = (
                        cw * errb[cur, xm1, k, i]
                        + cn * errb[prv, x, k, i]
                        + cnw * errb[prv, xm1, k, i]
                        + cne * errb[prv, xp1, k, i]
                        + cww * errb[cur, xm2, k, i]
                        + cnee * errb[prv, xp2, k, i]
                        + (vacc[x, k, i] >> 3)
                    )
                # the already coded channel(s) at this pixel: how did the same predictor do?
                if a >= 0:
                    for i in range(N_SPATIAL):
                        ssum[i] += bl_xw * errb[cur, x, ka, i]
                    if a2 >= 0:
                        for i in range(N_SPATIAL):
                            ssum[i] += bl_xw * errb[cur, x, ka2, i]
                ssum[io] >>= 1  # the OLS predictor gets a head start
                smin = ssum[0]
                for i in range(1, npr):
                    smin = min(smin, ssum[i])
                wsum = 0
                psum = 0
                esum = 0
                for i in range(npr):
                    r = ((smin + blend_c) << 16) // (ssum[i] + blend_c)
                    wgt = (r * r) >> 16
                    wsum += wgt
                    psum += wgt * preds[i]
                    esum += wgt * ssum[i]
                p = (psum + (wsum >> 1)) // wsum
                lb = lq(esum // (wsum * 16 * step))
                if lb > N_E - 1:
                    lb = N_E - 1
                # texture pattern (neighbours above/below the prediction), a context
                tex = 0
                if nb[0] * 16 > p:
                    tex |= 1
                if nb[1] * 16 > p:
                    tex |= 2
                if nb[2] * 16 > p:
                    tex |= 4
                if nb[3] * 16 > p:
                    tex |= 8
                if (2 * nb[1] - nb[5]) * 16 > p:
                    tex |= 16
                if (2 * nb[0] - nb[4]) * 16 > p:
                    tex |= 32
                # (a CALIC-style bias correction was tried here: it hurt once the coder got
                # the predictor-disagreement contexts, which model the bias per context)
                pb = p
                if pb < 0:
                    pb = 0
                elif pb > maxp:
                    pb = maxp
                pint = (pb + 8) >> 4
                frac = pb - pint * 16
                flip = frac < 0
                sg = -1 if flip else 1
                # contexts of the residual decisions
                sw = 1 if qw * sg > 0 else (2 if qw * sg < 0 else 0)
                sn = 1 if qn * sg > 0 else (2 if qn * sg < 0 else 0)
                sr = 1 if qref * sg > 0 else (2 if qref * sg < 0 else 0)
                lw = lq(abs(qw))
                if lw > 11:
                    lw = 11
                ln = lq(abs(qn))
                if ln > 11:
                    ln = 11
                lr = lq(abs(qref)) if a >= 0 else lq(abs(qne))
                if lr > 7:
                    lr = 7
                c0 = le * 4 + par
                c1 = lw * 12 + ln
                c2 = le * 8 + lr
                c3 = lb * 16 + (tex & 15)
                c4 = ((le >> 1) * 3 + sw) * 9 + sn * 3 + sr
                c5 = abs(frac) * 27 + sw * 9 + sn * 3 + sr
                ctxoff[0] = cbase[0] + (k * nctx[0] + c0) * NNODE
                ctxoff[1] = cbase[1] + (k * nctx[1] + c1) * NNODE
                ctxoff[2] = cbase[2] + (k * nctx[2] + c2) * NNODE
                ctxoff[3] = cbase[3] + (k * nctx[3] + c3) * NNODE
                ctxoff[4] = cbase[4] + (k * nctx[4] + c4) * NNODE
                ctxoff[5] = cbase[5] + (k * nctx[5] + c5) * NNODE
                ctxoff[6] = cbase[6] + (k * nctx[6] + par) * NNODE
                c7 = le * 24 + lb
                ia = N_SPATIAL + 2 if a >= 0 else 3
                c8 = (qd(preds[0] - pb, sg, step) * 9 + qd(preds[1] - pb, sg, step)) * 9 + qd(
                    preds[ia] - pb, sg, step
                )
                ctxoff[7] = cbase[7] + (k * nctx[7] + c7) * NNODE
                ctxoff[8] = cbase[8] + (k * nctx[8] + c8) * NNODE
                c9 = (le >> 1) * 81 + qd(preds[0] - pb, sg, step) * 9 + qd(preds[1] - pb, sg, step)
                ib = N_SPATIAL if a >= 0 else 6
                c10 = (
                    ((lb >> 2) * 9 + qd(preds[2] - pb, sg, step)) * 9 + qd(preds[10] - pb, sg, step)
                ) * 9 + qd(preds[ib] - pb, sg, step)
                ctxoff[9] = cbase[9] + (k * nctx[9] + c9) * NNODE
                ctxoff[10] = cbase[10] + (k * nctx[10] + c10) * NNODE
                c11 = (
                    (((le >> 2) * 5 + clip2(qw * sg)) * 5 + clip2(qn * sg)) * 5 + clip2(qne * sg)
                ) * 5 + clip2((qref if a >= 0 else qnw) * sg)
                ctxoff[11] = cbase[11] + (k * nctx[11] + c11) * NNODE
                for t in range(6):
                    pi = PI_REF[t] if a >= 0 else PI_NOREF[t]
                    ct = (lb >> 1) * 13 + qd13(preds[pi] - pb, sg, step)
                    ctxoff[12 + t] = cbase[12 + t] + (k * nctx[12 + t] + ct) * NNODE
                # the OLS predictor's position (with W/N) and its own recent error
                qo = qd13(po - pb, sg, step)
                c18 = (qo * 9 + qd(preds[0] - pb, sg, step)) * 13 + qd13(preds[1] - pb, sg, step)
                ctxoff[18] = cbase[18] + (k * nctx[18] + c18) * NNODE
                lo = lq(ssum[io] // (16 * step))
                if lo > N_E - 1:
                    lo = N_E - 1
                ctxoff[19] = cbase[19] + (k * nctx[19] + lo * 13 + qo) * NNODE
                mx[0] = (le >> 2) * 4 + par
                mx[1] = lb
                mx[2] = qd13(preds[0] - pb, sg, step) * 13 + qd13(preds[1] - pb, sg, step)
                mx[3] = qd13(preds[ia] - pb, sg, step) * 8 + lr
                for j in range(nmix):
                    msel[j] = mbase[j] + (k * mix_sets[j] + mx[j]) * NNODE
                fsel = (k * 6 + (le >> 2)) * NNODE
                ax[0] = le * 4 + par
                ax[1] = qd(preds[0] - pb, sg, step) * 9 + qd(preds[1] - pb, sg, step)
                ax[2] = qo * 12 + (lb >> 1)
                for j in range(napm):
                    asel[j] = abase[j] + (k * apm_ctx[j] + ax[j]) * NNODE
                # ask for the table lines of the likely decisions now (zero flag, first two
                # unary bits, signs of +-1 and +-2), so that their cache misses overlap; the
                # unary loop asks for the next bit's lines as it goes
                for i in range(nm):
                    prefetch(cmf, 2 * ctxoff[i])
                    prefetch(cmf, 2 * (ctxoff[i] + NODE_SIGN))
                for nd in (0, NODE_UNARY, NODE_UNARY + 1, NODE_SIGN, NODE_SIGN + 1):
                    for j in range(nmix):
                        wb = (msel[j] + nd) * MIX_STRIDE
                        prefetch(mix_w, wb)
                        prefetch(mix_w, wb + 16)
                    for j in range(napm):
                        ab = (asel[j] + nd) * 33
                        prefetch(apm, ab)
                        prefetch(apm, ab + 32)
                # residual, quantized in the loop
                qf = 0
                if enc:
                    e = img[y, x, c] - pint
                    if flip:
                        e = -e
                    qf = (e + near) // step if e >= 0 else -((near - e) // step)
                # its decisions: zero flag, unary bucket bits, mantissa bits, sign. One loop
                # with one call site, so the (inlined) decision code exists once
                mag = abs(qf)
                m = mag - 1
                kbe = bitlen(m) if enc else 0  # the bucket (encoder only)
                stage = 0
                j = 0
                kb = 0
                mm = 0
                t = 0
                while stage < 4:
                    if stage == 0:
                        node = 0
                        bit = 1 if mag == 0 else 0
                    elif stage == 1:
                        node = NODE_UNARY + j
                        bit = 1 if kbe > j else 0
                        if j >= 1:
                            for jj in range(nmix):
                                wb = (msel[jj] + node + 1) * MIX_STRIDE
                                prefetch(mix_w, wb)
                                prefetch(mix_w, wb + 16)
                            for jj in range(napm):
                                prefetch(apm, (asel[jj] + node + 1) * 33 + 16)
                    elif stage == 2:
                        if t == 0:
                            state = 0
                        elif t == 1:
                            state = 1 + (mm & 1)
                        else:
                            state = 3
                        node = NODE_MANT + 4 * kb + state
                        bit = (m >> (kb - 2 - t)) & 1 if enc else 0
                    else:
                        node = NODE_SIGN + (mag - 1 if mag < 4 else 3)
                        bit = 1 if qf < 0 else 0
                    b = code_decision(
                        enc,
                        bit,
                        node,
                        ctxoff,
                        nm,
                        cm,
                        limits,
                        mix_w,
                        msel,
                        mix_f,
                        fsel,
                        fx,
                        pr,
                        f_lr,
                        apm,
                        asel,
                        akn,
                        xin,
                        stretch,
                        squash,
                        recip,
                        st,
                        buf,
                        rates,
                    )
                    if stage == 0:
                        if b:
                            qf = 0
                            stage = 4
                        elif kmax == 0:  # a single magnitude: no bucket bits
                            mag = 1
                            stage = 3
                        else:
                            stage = 1
                    elif stage == 1:
                        if b:
                            j += 1
                        if b == 0 or j == kmax:
                            kb = j
                            stage = 2
                            mm = kb
                            if kb > 1:
                                mm = 1
                            else:
                                stage = 3
                                mag = mm + 1
                    elif stage == 2:
                        mm = (mm << 1) | b
                        t += 1
                        if t == kb - 1:
                            stage = 3
                            mag = mm + 1
                    else:
                        qf = -mag if b else mag
                        stage = 4
                # reconstruction
                er = qf * step
                q = qf
                if flip:
                    er = -er
                    q = -qf
                v = pint + er
                if v < 0:
                    v = 0
                elif v > maxval:
                    v = maxval
                rec[y, x, c] = v
                resb[r0, x, k] = q
                # learn: predictor errors
                v16 = v * 16
                for i in range(npr):
                    ei = abs(v16 - preds[i])
                    errb[cur, x, k, i] = ei
                    vacc[x, k, i] = ((vacc[x, k, i] * bl_vd) >> 3) + ei * 8
                # learn: the OLS model of this phase (a Gauss-Seidel sweep every SOLVE_EVERY visits)
                ols_update(
                    ols_a,
                    ols_b,
                    ols_w,
                    ols_n,
                    mo,
                    fv,
                    gsc,
                    hsc,
                    nf,
                    v - w0,
                    cs,
                    ((x >> 1) & (SOLVE_EVERY - 1)) == 0,
                )


def mixer_sets(n_sets: int, n_in: int) -> np.ndarray:
    """Weight sets (1/NM each: an average of the inputs to start with) + a zero use count,
    each padded to ``MIX_STRIDE`` int32 slots and line-aligned (two cache lines a set)."""
    w = aligned_full((n_sets, MIX_STRIDE), 0, np.int32)
    w[:, : n_in - 1] = 65536 // (n_in - 1)
    return w.reshape(-1)


class State:
    """All adaptive state of one coding run (identical initial values on both sides)."""

    def __init__(self, height: int, width: int, channels: int) -> None:
        nch = channels
        self.errb = np.zeros((2, width, nch, NP_ALL), dtype=np.int32)
        self.resb = np.zeros((3, width, nch), dtype=np.int64)
        self.cbase = np.concatenate(([0], np.cumsum(NCTX * nch * NNODE)[:-1])).astype(np.int64)
        size = int(NCTX.sum()) * nch * NNODE
        self.cm = aligned_full((size, 2), 0, np.uint16)  # (probability, hit count) pairs
        self.cm[:, 0] = 32768
        self.mbase = np.concatenate(([0], np.cumsum(MIX_SETS * nch * NNODE)[:-1])).astype(np.int64)
        self.mix_w = mixer_sets(int(MIX_SETS.sum()) * nch * NNODE, NM + 1)
        nmix = MIX_SETS.shape[0]
        first = [65536 // nmix] * nmix + [0]
        self.mix_f = np.tile(np.array(first, dtype=np.int64), nch * NNODE * F_SETS)
        self.abase = np.concatenate(([0], np.cumsum(APM_CTX * nch * NNODE)[:-1])).astype(np.int64)
        self.apm = init_apm(int(APM_CTX.sum()) * nch * NNODE, SQUASH)  # uint16
        self.vacc = np.zeros((width, nch, NP_ALL), dtype=np.int32)
        nmod = nch * N_PHASE
        self.ols_a = np.zeros((nmod, NF_MAX, NF_MAX), dtype=np.int32)
        self.ols_b = np.zeros((nmod, NF_MAX), dtype=np.int64)
        self.ols_w = np.zeros((nmod, NF_MAX), dtype=np.int32)
        self.ols_n = np.zeros(nmod, dtype=np.int64)
        self.others = other_channels(channels)
        self.rec = np.zeros((height, width, nch), dtype=np.int32)


def channel_plan(channels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Coding order and reference channels: RGB(A) codes G, then R (ref G), then B (refs G
    and R), then A alone; gray is one channel."""
    if channels == 1:
        return np.array([0]), np.array([-1]), np.array([-1])
    order = [1, 0, 2] + ([3] if channels == 4 else [])
    ref1 = [-1, 1, 1] + ([-1] if channels == 4 else [])
    ref2 = [-1, -1, 0] + ([-1] if channels == 4 else [])
    return np.array(order), np.array(ref1), np.array(ref2)


def other_channels(channels: int) -> np.ndarray:
    """Per coded channel, up to two channels coded *after* it whose causal neighbours feed
    its OLS predictor: R and B for G, B for R (RGB and RGBA; alpha and gray get none)."""
    oth = np.full((channels, 2), -1, dtype=np.int64)
    if channels >= 3:
        order, _, _ = channel_plan(channels)
        oth[0] = order[1], order[2]
        oth[1, 0] = order[2]
    return oth


def run_rows(
    enc: bool,
    y0: int,
    y1: int,
    img: np.ndarray,
    s: State,
    order: np.ndarray,
    ref1: np.ndarray,
    ref2: np.ndarray,
    maxval: int,
    near: int,
    st: np.ndarray,
    buf: np.ndarray,
) -> None:
    """Code rows [y0, y1) in the given direction, updating ``s``, ``st`` and ``buf``."""
    code_rows(
        enc,
        y0,
        y1,
        img,
        s.rec,
        order,
        ref1,
        ref2,
        s.others,
        maxval,
        near,
        s.errb,
        s.resb,
        s.cm,
        LIMITS,
        s.mix_w,
        s.mix_f,
        s.apm,
        st,
        buf,
        STRETCH,
        SQUASH,
        RECIPROCAL,
        NCTX,
        s.cbase,
        MIX_SETS,
        s.mbase,
        APM_CTX,
        s.abase,
        PARAMS,
        s.vacc,
        s.ols_a,
        s.ols_b,
        s.ols_w,
        s.ols_n,
    )
