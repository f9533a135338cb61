#!/usr/bin/env python3
"""Summarise Chromium traces of browser pages (LINKSIM_BROWSER_TRACE=DIR writes DIR/trace-*.json; docs/performance.md, "Profiling a page").
usage: tracesum.py FROM TO [--top N] FILE...
FROM, TO: two of the app's marks, without "linksim." (qr.drawn, qr.painted, chats.listed, chats.painted, ...).
For each page that set both marks: the window's length, then the time each thread spent in each event (its overlap with the
window, summed; nested events count again inside their parents), and how many font look-ups (a round trip to the browser
process each, on Linux) fell in the window."""
import json,sys,collections
args=sys.argv[1:]; top=25
if len(args)<3: sys.exit(__doc__)
lo,hi=('linksim.'+args.pop(0),'linksim.'+args.pop(0))
if args[0]=='--top': args.pop(0); top=int(args.pop(0))
for f in args:
    ev=json.load(open(f))
    names={}; marks=collections.defaultdict(dict)
    for e in ev:
        if e.get('ph')=='M' and e.get('name') in ('thread_name','process_name'):
            names[(e['pid'],e.get('tid') if e['name']=='thread_name' else None)]=e['args']['name']
        elif e.get('name','').startswith('linksim.'):
            marks[e['pid']].setdefault(e['name'],e['ts'])
    for pid,m in marks.items():
        if lo not in m or hi not in m: continue
        t0,t1=m[lo],m[hi]
        spent=collections.Counter(); lookups=0
        for e in ev:
            if e.get('ph')!='X' or e['ts']>t1 or e['ts']+e.get('dur',0)<t0: continue
            renderer=names.get((e['pid'],None))=='Renderer'
            if renderer and e['pid']!=pid: continue  # another page
            if e['name']=='WebSandboxSupportLinux::GetWebFontRenderStyleForStrike' and e['pid']==pid: lookups+=1
            spent[(names.get((e['pid'],None),str(e['pid'])),names.get((e['pid'],e['tid']),str(e['tid'])),e['name'])]+=(min(e['ts']+e.get('dur',0),t1)-max(e['ts'],t0))/1000
        print(f"{f} page {pid}: {lo} -> {hi} {(t1-t0)/1000:.1f} ms, font look-ups {lookups}")
        for (proc,thread,name),ms in spent.most_common(top):
            print(f"  {ms:7.1f} ms  {proc[:10]:10} {thread[:24]:24} {name[:90]}")
