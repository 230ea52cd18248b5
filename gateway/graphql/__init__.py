"""GraphQL at ``/graphql``: the catalog as a typed schema, beside the REST routes.

Modules by concept: ``config`` (limits and switches), ``scalars``, ``types`` and
``catalog_types`` (output types), ``inputs``, ``queries``, ``mutations``, ``errors``
(codes and masking), ``limits`` (cost, input size, observation budget), ``loaders``
(DataLoaders), ``auth`` (keys and scopes), ``summary`` and ``paging`` (work over many
series), ``documents`` (parse and validation cache), ``results`` (result cache by
catalog version), ``pipeline`` (the steps before execution, one extension),
``execution`` (column lists), ``extensions`` (codes, masking, metrics),
``decorators`` (typed field decorators), ``schema`` and ``router`` (the Litestar
controller).

Nothing is imported here, so :mod:`gateway.settings` can use ``config`` without
loading the schema.
"""
