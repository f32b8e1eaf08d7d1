import torch, json
shapes=[(4096,3072,2048),(4096,2048,2048),(4096,16384,2048),(4096,2048,8192),(4096,6144,4096),(4096,4096,4096),(4096,28672,4096),(4096,4096,14336)]
for M,N,K in shapes:
    a=torch.randn(M,K,device='cuda',dtype=torch.bfloat16); w=torch.randn(N,K,device='cuda',dtype=torch.bfloat16)
    for _ in range(3): torch.nn.functional.linear(a,w)
    e0=torch.cuda.Event(enable_timing=True); e1=torch.cuda.Event(enable_timing=True)
    torch.cuda.synchronize(); e0.record()
    for _ in range(20): torch.nn.functional.linear(a,w)
    e1.record(); torch.cuda.synchronize(); ms=e0.elapsed_time(e1)/20
    print(json.dumps({"variant":"torch","M":M,"N":N,"K":K,"ms":round(ms,4),"tflops":round(2*M*N*K/ms/1e9,1)}))
