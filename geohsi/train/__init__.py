"""geohsi.train."""


from geohsi._callable import make_callable  # noqa: E402

make_callable(__name__, "geohsi.train.loop:train")  # `geohsi.train(...)` calls it
