#!/usr/bin/env python3
"""Summarise the CPU profiles of browser pages (LINKSIM_BROWSER_PROFILE=DIR writes DIR/*.cpuprofile; docs/performance.md, "Profiling a page").
usage: profsum.py WINDOW [--top N] FILE...
WINDOW: boot  = profile start .. Go's main.main
        start = main.main .. last sample in qrcanvas.Draw (page opened -> QR drawn, Go part)
        chats = first sample in sim/device.acceptOffer .. last in main.(*mainView).renderChats (scan -> chats, page side)
        all   = whole profile
Prints, averaged over the files: busy ms, then inclusive ms per function (a function counted once per sample)."""
import json,sys,collections
def load(f):
    p=json.load(open(f)); p=p.get('profile',p)
    nodes={n['id']:n for n in p['nodes']}; parent={}
    for n in p['nodes']:
        for c in n.get('children',[]): parent[c]=n['id']
    cache={}
    def stack(i):
        if i in cache: return cache[i]
        s=[];j=i
        while j in nodes:
            cf=nodes[j]['callFrame']; s.append(cf['functionName'] or '('+cf.get('url','')[-30:]+')'); j=parent.get(j)
        cache[i]=s; return s
    t=p['startTime']; out=[]
    for sid,dt in zip(p['samples'],p['timeDeltas']):
        t+=dt; out.append((t,stack(sid)))
    return out
args=sys.argv[1:]; win=args.pop(0); top=60
if args and args[0]=='--top': args.pop(0); top=int(args.pop(0))
tot=collections.Counter(); spans=[]
for f in args:
    s=load(f)
    def first(k): return min(t for t,st in s if any(k in x for x in st))
    def last(k): return max(t for t,st in s if any(k in x for x in st))
    try:
        lo,hi={'boot':lambda:(s[0][0],first('main.main')),'start':lambda:(first('main.main'),last('qrcanvas.Draw')),
               'chats':lambda:(first('acceptOffer'),last('renderChats')),'all':lambda:(s[0][0],s[-1][0])}[win]()
    except ValueError:
        print('skip',f,'(window marks missing)'); continue
    spans.append((hi-lo)/1000)
    for i,(t,st) in enumerate(s):
        if not (lo<=t<=hi): continue
        dt=(s[i+1][0]-t)/1000 if i+1<len(s) else 0
        if st[0]=='(idle)': tot['(idle)']+=dt; continue
        tot['BUSY']+=dt
        for x in set(st): tot[x]+=dt
n=max(1,len(spans)); print('files',len(spans),'window ms',[round(x) for x in spans])
skip=('(root)','js-to-wasm','wasm_export_resume','_resume','wasm_pc_f_loop')
for k,v in tot.most_common(top+10):
    if k in skip or k.startswith('(.js'): continue
    print(f"{v/n:8.1f} {k[:120]}")
