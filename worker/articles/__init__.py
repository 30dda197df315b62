"""Articles: what an article is. Its identity, one canonical URL whatever tracking or
spelling a link uses (`urls`); its main text from page HTML (`extract`); and the
fingerprints that find its copies (`dedupe`). Pure. Feeds key their items by the
canonical URL, so this package comes before `worker.feeds` in the import order.
"""
