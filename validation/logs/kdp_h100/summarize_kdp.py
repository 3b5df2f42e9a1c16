"""Tables of SUMMARY.md from kernel_dispatch.csv (this folder, or the profile folder given: kdp_h200), read-only;
run from the repo root:
    PYTHONPATH=. python validation/logs/kdp_h100/summarize_kdp.py [validation/logs/kdp_h200]
GEMM tile / cluster from the nvjet kernel name; cuBLAS is column-major, so its M is torch's n and its N torch's m.
The model's own choice (tile, split-K, stream-K) comes from hwmodels.gpu.gemm_time with the committed calibrations."""
import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hwmodels import gpu
from hwmodels.spec import load_hw

pd.set_option("display.width", 250)
pd.set_option("display.max_columns", 40)
d = pd.read_csv((Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent) / "kernel_dispatch.csv")
g=d[d.kind=='gemm'].copy()
rx=re.compile(r'nvjet_sm90_(?P<prec>q*tst)_(?P<bm>\d+)x(?P<bn>\d+)_(?P<bk>\d+)x(?P<st>\d+)_(?P<cx>\d)x(?P<cy>\d)_(?P<ras>[hv])_bz(?P<flags>.*)_(?P<lay>T\w\w)$')
rows=[]
for (fmt,impl,dims),x in g.groupby(['fmt','impl','dims'],sort=False):
    D=json.loads(dims); r=dict(fmt=fmt,impl=impl,**D)
    nv=x[x.kernel.str.startswith('nvjet')]
    assert len(nv)==1, x.kernel.tolist()
    k=nv.iloc[0]; m=rx.match(k.kernel); assert m, k.kernel
    r.update({a:(int(b) if b.isdigit() else b) for a,b in m.groupdict().items()})
    fl=r.pop('flags'); r['coop']= 'coopA' if 'coopA' in fl else ('coopB' if 'coopB' in fl else '-')
    r['algo2']='algo2' in fl; r['nv_splitK']='splitK' in fl
    gr=json.loads(k.grid); r['grid']=tuple(gr); r['ctas']=int(np.prod(gr))
    r['t_nvjet']=k.kernel_time_s; r['t_call']=k.call_kernel_time_s; r['n_kernels']=k.n_kernels
    r['memset']=x.kernel.str.startswith('Memset').any()
    red=x[x.kernel.str.contains('splitKreduce')]
    r['reduce']=len(red)>0; r['t_reduce']=red.kernel_time_s.sum() if len(red) else 0.0
    r['red_grid']=red.grid.iloc[0] if len(red) else ''
    r['regs']=k.regs_per_thread; r['smem']=k.shared_mem_bytes
    r['suite']=x.suite.iloc[0]
    rows.append(r)
G=pd.DataFrame(rows)
# cuBLAS column-major: its M = torch n, its N = torch m
G['tiles']=np.ceil(G.n/G.bm)*np.ceil(G.m/G.bn)
G['tiles_alt']=np.ceil(G.m/G.bm)*np.ceil(G.n/G.bn)
G['ratio']=G.ctas/G.tiles
out={}
for name in ('h200','h100_sxm'):
    hw=load_hw(name); P=gpu.params_for(hw)
    for fmt in ('bf16','fp8_e4m3'):
        x=G[G.fmt==fmt]
        t,det=gpu.gemm_time(P,x.m.values,x.n.values,x.k.values,np.ones(len(x)),hw.peak(fmt),2.0 if fmt=='bf16' else 1.0,2.0,fmt=fmt,details=True,bw=None)
        tl=det['tile']
        for i,idx in enumerate(x.index):
            out.setdefault(idx,{})
            out[idx].update({f'{name}_bm':tl[i,0],f'{name}_bn':tl[i,1],f'{name}_split':tl[i,3],f'{name}_sk':tl[i,4],f'{name}_t':t[i]})
M=pd.DataFrame.from_dict(out,orient='index')
G = G.join(M)
tn=np.ceil(G.n/G.bm); tm=np.ceil(G.m/G.bn)
G['pad']=np.ceil(tn/G.cx)*G.cx*np.ceil(tm/G.cy)*G.cy
G['split']=np.where(G.nv_splitK, G.ctas/G.pad, 1)
G['persist']=G.ctas<G.pad
G['mcls']=pd.cut(G.m,[0,16,128,1024,1e9],labels=['m<=16','17-128','129-1024','>1024'])
G['tile']=G.bm.astype(str)+'x'+G.bn.astype(str)
G['cl']=G.cx.astype(str)+'x'+G.cy.astype(str)
G['fa']=G.impl.str.contains('fast')
G['fmt2']=np.where(G.fa,'fp8+fast',G.fmt)
def top(s,n=2):
    v=s.value_counts(); return ', '.join(f'{k} {c}' for k,c in v.head(n).items())
agg=G.groupby(['fmt2','mcls'],observed=True).apply(lambda x: pd.Series({
 'n':len(x),'splitK':int(x.nv_splitK.sum()),'persist':int(x.persist.sum()),'memset':int(x.memset.sum()),
 'kern/call':f'{x.n_kernels.mean():.2f}', 'split med':(x.split[x.nv_splitK].median() if x.nv_splitK.any() else np.nan),
 'BN(m-side)':top(x.bn.astype(str)), 'BM(n-side)':top(x.bm.astype(str)),'cluster':top(x.cl),'coop':top(x.coop)}))
print(agg.to_string())
print('split int?', np.allclose(G.split, np.round(G.split)), G.split[G.nv_splitK].describe().to_dict())
print('memset & persist', pd.crosstab(G.memset,G.persist))
print('memset vs coop', pd.crosstab(G.memset,G.coop))
print('persist vs coop', pd.crosstab(G.persist,G.coop))
print('distinct tiles', G.groupby('fmt2').tile.nunique().to_dict(), 'stages',G.groupby('fmt2').st.describe()[['min','50%','max']].to_string(), G.groupby('fmt2').bk.value_counts().to_string())
for c in ("h200", "h100_sxm"):
    mod = np.where(G[c + "_sk"] > 0, "streamK", np.where(G[c + "_split"] > 1, "splitK", "none"))
    meas = np.where(G.nv_splitK, "splitK+reduce", np.where(G.memset, "memset+persist", np.where(G.persist, "persist", "plain")))
    print(c, "model (rows: measured)")
    print(pd.crosstab([G.fmt2, meas], mod))
print("reduce kernel us", (G.t_reduce[G.nv_splitK] * 1e6).describe().round(2).to_dict())
s = G[G.nv_splitK]
print("split-K: k/split min", (s.k / s.split).min(), "median", (s.k / s.split).median(), "non-integer CTAs/tile", int((~np.isclose(s.split, np.round(s.split))).sum()))
print("split-K share by k", G.groupby(pd.cut(G.k, [0, 2048, 4096, 8192, 16384, 1e6]), observed=True).nv_splitK.mean().round(2).to_dict())
f = G[(G.fmt == "fp8_e4m3") & ~G.fa].set_index(["m", "n", "k"])
a = G[G.fa].set_index(["m", "n", "k"])
j = a.join(f, lsuffix="_fa", rsuffix="_acc", how="inner")
print("fast-accum pairs", len(j), "same tile", int((j.tile_fa == j.tile_acc).sum()), "t ratio fa/acc", (j.t_call_fa / j.t_call_acc).describe().round(3).to_dict())
print(pd.crosstab(G.fmt2, G.algo2))
# elementwise
e = d[d.kind != "gemm"].copy()
e["rows"] = e.dims.map(lambda s: json.loads(s)["rows"])
e["cols"] = e.dims.map(lambda s: json.loads(s)["cols"])
def fam(k):
    if "softmax_warp_forward" in k:
        return "warp<" + re.search(r"float, (\d+),", k).group(1) + ">"
    m = re.search(r"cunn_SoftMaxForwardReg<.*, (\d+)>\(", k)
    if m:
        return "Reg<" + m.group(1) + ">"
    if "SoftMaxForwardSmem" in k:
        return "Smem"
    if "cunn_SoftMaxForward<" in k:
        return "Forward(multipass)"
    if "vectorized_layer_norm" in k:
        return "vectorized_layer_norm<rms>"
    return k[:30]
e["fam"] = e.kernel.map(fam)
e["g0"] = e.grid.map(lambda s: json.loads(s)[0])
e["b"] = e.block.map(lambda s: tuple(json.loads(s)))
e["m8"] = e.cols % 8 == 0
e["byt"] = np.where(e.kind == "add_rmsnorm", 4, 2) * e.rows * e.cols * 2
e["bw_TBs"] = e.byt / e.kernel_time_s / 1e12
print(e.groupby(["kind", "fam"]).agg(n=("cols", "size"), cmin=("cols", "min"), cmax=("cols", "max"),
      blocks=("b", lambda x: sorted(set(x))), regs=("regs_per_thread", lambda x: sorted(set(x))), kern=("n_kernels", "max")).to_string())
print((e.g0 == e.rows).groupby([e.kind, e.fam]).mean().to_string())
print(e[e.kind == "softmax"].groupby(["fam", "m8"]).cols.agg(["min", "max", "size"]).to_string())
print(e[e.kind == "add_rmsnorm"].groupby("b").cols.agg(["min", "max", "size"]).to_string())
print(e[e.byt >= 64e6].groupby(["kind", "fam"]).bw_TBs.agg(["size", "median", "min", "max"]).round(2).to_string())
