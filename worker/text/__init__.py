"""Text primitives shared by every stage that reads prose: sentences, stemmed terms and their
background rarity (`worker.text.terms`), and the names, numbers and dates a sentence
carries (`worker.text.specifics`). Pure: no I/O, no state beyond memo caches.
"""
