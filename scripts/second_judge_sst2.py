"""Second-judge check of the synthetic labels of the SST-2 0.1 % ablation run to 200 % (README, #17).

A frozen mpnet + logistic regression on 3,000 train sentences labels the acquired synthetic items of each
generative method; its agreement with the MiniLM annotator is compared with their agreement on the real test
set. Needs the run folders of `make paper-ablation-sst2-to200` split as in the README (runs/ablation_sst2/
signal_gen, norl, calent) and runs/annotators/sst2. Run: .venv/bin/python scripts/second_judge_sst2.py
"""
import glob, torch, datasets, numpy as np
from sklearn.linear_model import LogisticRegression
from signal_hf.config.parsing import load_recipe
from signal_hf.data import load_task
from signal_hf.encoder import SentenceEncoder
from transformers import AutoModelForSequenceClassification, AutoTokenizer
datasets.disable_progress_bars(); torch.set_num_threads(2)
cfg=load_recipe('recipes/paper/ablation_sst2_0.1_signal_gen.yaml'); task=load_task(cfg.data)
tr=task.train.shuffle(seed=123).select(range(3000)); te=task.test
enc=SentenceEncoder('bundled:mpnet')
Xtr=enc.embed(tr['text']).numpy(); Xte=enc.embed(te['text']).numpy()
judge=LogisticRegression(C=1.0,max_iter=2000).fit(Xtr,np.array(tr['label']))
tok=AutoTokenizer.from_pretrained('runs/annotators/sst2'); ann=AutoModelForSequenceClassification.from_pretrained('runs/annotators/sst2').eval()
def annot(texts):
    out=[]
    for i in range(0,len(texts),64):
        e=tok(texts[i:i+64],truncation=True,max_length=256,padding=True,return_tensors='pt')
        with torch.no_grad(): out+=ann(**e).logits.argmax(-1).tolist()
    return np.array(out)
yte=np.array(te['label']); jte=judge.predict(Xte); ate=annot(te['text'])
print(f"test (872 real): judge acc {100*(jte==yte).mean():.1f} %, annotator acc {100*(ate==yte).mean():.1f} %, agreement {100*(jte==ate).mean():.1f} %")
for d,name in [('signal_gen','signal-gen'),('norl','signal-gen-norl'),('calent','cal-gen'),('calent','entropy-gen')]:
    tot=[];
    for s in range(3):
        f=glob.glob(f'runs/ablation_sst2/{d}/seeds/seed-{s}/store/{name}-seed{s}/round-19/data/labeled-*.parquet')[0]
        ds=datasets.Dataset.from_parquet(f)
        syn=ds.filter(lambda r: str(r['id']).startswith('syn'))
        j=judge.predict(enc.embed(syn['text']).numpy()); a=np.array(syn['label'])
        tot.append((int((j==a).sum()),len(a)))
    print(name, 'agreement on acquired synthetic per seed', [f"{100*x/n:.0f} % ({x}/{n})" for x,n in tot], f"all {100*sum(x for x,_ in tot)/sum(n for _,n in tot):.1f} %")
