"""Train the llama-style SentencePiece BPE tokenizer and tokenize the corpus to uint16 .npy.

Needs Debian's `sentencepiece` (spm_train) and `python3-sentencepiece`; run with the system
python (/usr/bin/python3), which is the one python3-sentencepiece installs into.

    /usr/bin/python3 tools/corpus/build_tokenizer.py

Output:
  build/tokenizer/tokenizer.model, .vocab   (4096 pieces: <unk>=0, <s>=1, </s>=2, 256 bytes)
  build/data/train.npy, val.npy             (uint16 token ids; each book is <s> text </s>)
"""

import os
import struct
import subprocess

import sentencepiece as spm

CORPUS = "build/corpus"
TOK = "build/tokenizer"
DATA = "build/data"
VOCAB = 4096


def spm_train():
    os.makedirs(TOK, exist_ok=True)
    # spm_train reads one sentence a line: paragraphs, without the book separators.
    src = f"{TOK}/spm_input.txt"
    with open(f"{CORPUS}/train.txt", encoding="utf-8") as f, open(src, "w") as g:
        for line in f:
            if line.strip() != "\f":
                g.write(line)
    subprocess.run([
        "spm_train", f"--input={src}", f"--model_prefix={TOK}/tokenizer", "--model_type=bpe",
        f"--vocab_size={VOCAB}", "--byte_fallback=true", "--split_digits=true",
        "--normalization_rule_name=identity", "--remove_extra_whitespaces=false",
        "--add_dummy_prefix=true", "--allow_whitespace_only_pieces=true",
        "--character_coverage=1.0", "--max_sentence_length=65536",
        "--unk_id=0", "--bos_id=1", "--eos_id=2", "--pad_id=-1", "--num_threads=2",
        "--minloglevel=1",
    ], check=True)
    os.remove(src)


def save_npy_u16(path: str, ids: list):
    """Write a 1-D little-endian uint16 .npy (format 1.0) without numpy."""
    header = "{'descr': '<u2', 'fortran_order': False, 'shape': (%d,), }" % len(ids)
    header += " " * ((64 - (10 + len(header) + 1) % 64) % 64) + "\n"
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin-1"))
        f.write(struct.pack(f"<{len(ids)}H", *ids))


def tokenize(sp):
    """Encode each book whole (as the runtime encodes a prompt: one dummy prefix, '\\n' as the
    <0x0A> byte piece), wrapped in <s> ... </s>."""
    os.makedirs(DATA, exist_ok=True)
    for split in ("train", "val"):
        text = open(f"{CORPUS}/{split}.txt", encoding="utf-8").read()
        ids = []
        for doc in text.split("\n\f\n"):
            doc = doc.strip("\n")
            if doc:
                ids += [sp.bos_id()] + sp.encode(doc) + [sp.eos_id()]
        save_npy_u16(f"{DATA}/{split}.npy", ids)
        print(f"{split}: {len(ids)} tokens, {len(text.encode()) / len(ids):.2f} bytes/token")


def main():
    spm_train()
    sp = spm.SentencePieceProcessor(model_file=f"{TOK}/tokenizer.model")
    assert sp.get_piece_size() == VOCAB
    assert sp.encode("a\nb", out_type=str) == ["\u2581a", "<0x0A>", "b"], "newline handling"
    tokenize(sp)


if __name__ == "__main__":
    main()
