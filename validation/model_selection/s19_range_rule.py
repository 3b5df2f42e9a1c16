"""Round 10's range rule on the fit rows (information, not a selection): the review of round 9 found shapes far from
every fit row corrected at full strength; round 10 corrects only inside the fit rows' range in every shape dimension
(hwmodels/gpu_residuals.py). The rule was not chosen by s19's selection; this prints what it changes on s19's
leave-one-fit-suite-out rows of each corrected class (a row outside the other suites' range keeps the analytical
price). Run: PYTHONPATH=. python validation/model_selection/s19_range_rule.py > validation/model_selection/s19_range_rule.txt
"""
import numpy as np, sys
sys.argv=[sys.argv[0]]
import validation.model_selection.s18_residual_candidates as s  # the grouping and lookup s19 scores with
from cosim.calibrate import dataset, fit
from hwmodels.gpu import analytical_params
from hwmodels.spec import load_hw
from cosim.calibrate.residuals import CHOSEN
from validation.model_selection.common import CSV
for hw_name in ("h200","h100_sxm"):
    hw=fit.base_spec(hw_name)
    meas=[m for m in dataset.load_ops(CSV[hw_name]) if m.split=="fit" and m.op is not None and m.reliable and m.cls!="launch"]
    P=analytical_params(load_hw(hw_name)); pred=fit.predict(P,meas,hw); logr=np.log(np.array([m.time_s for m in meas])/pred)
    keys=[];feats=[]
    for m in meas:
        k,n=s.group_key(m); keys.append(k); feats.append(s.features(m,n))
    for cls,(K,sh) in CHOSEN[hw_name].items():
        idx=[i for i,m in enumerate(meas) if m.cls==cls]
        e1=[];e2=[];nout=0
        for i in idx:
            other=[j for j in idx if keys[j]==keys[i] and meas[j].suite!=meas[i].suite]
            X=np.array([feats[j] for j in other]); c=s.correct(X,logr[other],feats[i],K,sh)
            e1.append(abs(np.exp(c-logr[i])-1)*100)
            q=feats[i]; out=np.any((q<X.min(0)-1e-9)|(q>X.max(0)+1e-9))
            nout+=out; c2=0.0 if out else c
            e2.append(abs(np.exp(c2-logr[i])-1)*100)
        f=lambda e:(round(float(np.median(e)),2),round(float(np.percentile(e,90)),2))
        print(hw_name,cls,len(idx),"suite-out as s19",f(e1),"with the range rule",f(e2),"rows outside",nout)
