import * as h from '../dist/index.js';
await h.init();
const sizes=[784,256,256,10], batch=128;
const layers=[]; for (let i=0;i+1<sizes.length;i++){layers.push(h.nn.linear(sizes[i],sizes[i+1])); if(i+2<sizes.length) layers.push(h.nn.tanh());}
const model=h.nn.sequential(layers);
const x=h.tensor(Float32Array.from({length:batch*784},()=>Math.random()*2-1),[batch,784]);
const y=h.tensor(Float32Array.from({length:batch},()=>Math.floor(Math.random()*10)),[batch]);
const obj=h.objective(model,'ce',{x,y},{seed:1}); const v=model.init({seed:2});
const t=(f)=>{f();const s=[];for(let k=0;k<9;k++){const t0=performance.now();for(let i=0;i<5;i++)f();s.push((performance.now()-t0)/5);}return s.sort((a,b)=>a-b)[4];};
const a=h.tensor(Float32Array.from({length:256*256},()=>Math.random()),[256,256]);
console.log(h.wasmVariant(), 'hvp', t(()=>obj.hvp(v)).toFixed(2), 'grad', t(()=>obj.grad()).toFixed(2), 'gemm256', t(()=>h.matmul(a,a).dispose()).toFixed(3));
