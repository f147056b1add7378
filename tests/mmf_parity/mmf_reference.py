"""Run in MMF's own environment (mmf 1.0.0rc10, torch 1.5, transformers 2.x; `make mmf-env`):
build MMF's VisualBERT and ViLBERT (pretraining and classification heads) at the config
given, random weights, eval mode, on the inputs given, and write weights and outputs to .npz
files that ``tests/test_mmf_parity.py`` loads into our models.

    python mmf_reference.py CONFIG.json OUT_DIR
"""
import json
import sys
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

torch.Tensor.cuda = lambda self, *a, **k: self       # MMF rc10 puts position ids on the GPU


def bert_fields(c):
    return dict(vocab_size=c["vocab_size"], hidden_size=c["hidden"], num_hidden_layers=c["layers"],
                num_attention_heads=c["heads"], intermediate_size=c["inner"], hidden_act="gelu",
                hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
                max_position_embeddings=c["max_positions"], type_vocab_size=c["type_vocab"],
                initializer_range=c["initializer_range"], layer_norm_eps=c["layer_norm_eps"])


def visual_bert(c, inputs, out):
    from mmf.models.visual_bert import VisualBERTForClassification, VisualBERTForPretraining
    common = dict(bert_fields(c), bert_model_name=None, visual_embedding_dim=c["feature_dim"],
                  embedding_strategy="plain", bypass_transformer=False, output_attentions=False,
                  output_hidden_states=True, random_initialize=False)
    mask = np.concatenate([inputs["attention_mask"], inputs["region_mask"]], 1)
    args = [torch.from_numpy(inputs["input_ids"]), torch.from_numpy(mask), torch.from_numpy(inputs["token_type_ids"]),
            torch.from_numpy(inputs["features"]), None,
            torch.zeros(inputs["region_mask"].shape, dtype=torch.long), None]
    for head, cls in (("pretraining", VisualBERTForPretraining), ("classification", VisualBERTForClassification)):
        torch.manual_seed(1)
        model = cls(OmegaConf.create(dict(common, training_head_type=head, num_labels=c["num_labels"]))).eval()
        with torch.no_grad():
            got = model(*args, masked_lm_labels=torch.from_numpy(inputs["mlm_labels"]) if head == "pretraining"
                        else None)
        state = {f"model.{k}": v.numpy() for k, v in model.state_dict().items()}
        outputs = {"sequence_output": got["sequence_output"], "pooled_output": got["pooled_output"]}
        outputs["logits" if head == "pretraining" else "scores"] = got["logits" if head == "pretraining" else "scores"]
        np.savez(out / f"visual_bert_{head}.npz", **{f"state/{k}": v for k, v in state.items()},
                 **{f"out/{k}": v.numpy() for k, v in outputs.items()})


def vilbert(c, inputs, out):
    from mmf.models import vilbert as v
    # rc10 builds ViLBERT only through from_pretrained(bert_model_name); random weights here
    v.ViLBERTBase.from_pretrained = classmethod(lambda cls, name, config=None, **kw: cls(config))
    v.get_mmf_cache_dir = lambda: str(out)           # (it reads MMF's global config otherwise)
    common = dict(bert_fields(c), bert_model_name=None, random_initialize=False,
                  v_feature_size=c["feature_dim"], v_target_size=c["num_detector_classes"],
                  v_hidden_size=c["v_hidden"], v_num_hidden_layers=c["v_layers"],
                  v_num_attention_heads=c["v_heads"], v_intermediate_size=c["v_inner"],
                  bi_hidden_size=c["bi_hidden"], bi_num_attention_heads=c["bi_heads"],
                  v_attention_probs_dropout_prob=0.1, v_hidden_dropout_prob=0.1, v_hidden_act="gelu",
                  v_biattention_id=c["v_biattention_id"], t_biattention_id=c["t_biattention_id"],
                  fast_mode=False, with_coattention=True, in_batch_pairs=False, fixed_t_layer=0,
                  fixed_v_layer=0, dynamic_attention=False, visualization=False, task_specific_tokens=False,
                  visual_target=0, num_negative=128, fusion_method="mul", num_labels=c["num_labels"])
    args = [torch.from_numpy(inputs["input_ids"]), torch.from_numpy(inputs["features"]),
            torch.from_numpy(inputs["boxes"]), torch.from_numpy(inputs["token_type_ids"]),
            torch.from_numpy(inputs["attention_mask"]), torch.from_numpy(inputs["region_mask"])]
    for head, cls in (("pretraining", v.ViLBERTForPretraining), ("classification", v.ViLBERTForClassification)):
        torch.manual_seed(1)
        model = cls(OmegaConf.create(dict(common, training_head_type=head)))
        if head == "pretraining":
            # rc10 never ties ViLBERT's MLM decoder to the word embeddings (its init_weights
            # fails, from_pretrained ties the base only); ours is tied, as BERT's. Tied here, so
            # that the test checks the rest of the head
            model.cls.predictions.decoder.weight = model.bert.embeddings.word_embeddings.weight
        model.eval()
        with torch.no_grad():
            t, im, pooled_t, pooled_v, _ = model.bert(*args, output_all_encoded_layers=False)
            outputs = {"text": t, "image": im, "pooled": pooled_t * pooled_v}
            if head == "pretraining":
                scores_t, scores_v, _ = model.cls(t, im, pooled_t, pooled_v)
                outputs.update(mlm_logits=scores_t, region_logits=scores_v)
            else:
                outputs["scores"] = model(*args)["scores"]
        state = {f"model.{k}": v_.numpy() for k, v_ in model.state_dict().items()}
        np.savez(out / f"vilbert_{head}.npz", **{f"state/{k}": x for k, x in state.items()},
                 **{f"out/{k}": x.numpy() for k, x in outputs.items()})


def main():
    config = json.loads(Path(sys.argv[1]).read_text())
    out = Path(sys.argv[2])
    inputs = dict(np.load(out / "inputs.npz"))
    visual_bert(config, inputs, out)
    vilbert(config, inputs, out)
    print(json.dumps({"mmf": __import__("mmf").__version__, "torch": torch.__version__,
                      "transformers": __import__("transformers").__version__}))


if __name__ == "__main__":
    main()
