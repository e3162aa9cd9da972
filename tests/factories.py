"""factory_boy factories for the models the tests need, one section per app."""
import factory

# --- datastore: DataType / Record ----------------------------------------------------------


class DataTypeFactory(factory.django.DjangoModelFactory):
    """A data type; pass `fields` as the list of field declarations it should have."""

    class Meta:
        model = "datastore.DataType"
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"type_{n}")
    fields = factory.LazyFunction(list)


class RecordFactory(factory.django.DjangoModelFactory):
    """A record stored as given, without the services' validation or signals."""

    class Meta:
        model = "datastore.Record"

    data_type = factory.SubFactory(DataTypeFactory)
    data = factory.LazyFunction(dict)


# --- end datastore -------------------------------------------------------------------------
