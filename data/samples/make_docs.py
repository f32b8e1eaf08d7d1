"""Generates the RAG sample's demo documents (data/samples/docs/*.txt) and questions (rag-questions.json).
Documents are in the bundled model's haystack style (tasks.py): filler sentences from its closed word list and
needles "One of the special magic numbers for KEY is: NUMBER." Run from the repository root: python3 data/samples/make_docs.py"""
import json
import random

r = random.Random(8)
words = [w.strip() for w in open("models/tiny-ruler-llama/words.txt") if w.strip()]
words = [w for w in words if w.isalpha() and w.islower()]
NAMES = ["harbour-ledger", "orchard-notes", "signal-journal", "vault-register"]
questions = []
used = set()
for name in NAMES:
    paras = []
    for p in range(10):
        sents = [" ".join(r.choice(words) for _ in range(r.randint(5, 12))) + "." for _ in range(r.randint(3, 5))]
        paras.append(sents)
    for p in r.sample(range(10), 3):
        while True:
            key = "%s-%s" % (r.choice(words), r.choice(words))
            if key not in used:
                used.add(key)
                break
        val = str(r.randint(1000000, 9999999))
        sents = paras[p]
        sents.insert(r.randint(0, len(sents)), "One of the special magic numbers for %s is: %s." % (key, val))
        questions.append(dict(document=name + ".txt", key=key,
                              question="What is the special magic number for %s mentioned in the provided text?" % key,
                              answer=val))
    with open("data/samples/docs/%s.txt" % name, "w") as f:
        f.write("\n\n".join(" ".join(s) for s in paras) + "\n")
with open("data/samples/rag-questions.json", "w") as f:
    json.dump(questions, f, indent=1)
    f.write("\n")
