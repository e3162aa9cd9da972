from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True
    dependencies = []
    operations = [
        migrations.CreateModel(
            name="Hit",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("email", models.CharField(max_length=254)),
                ("amount", models.FloatField()),
                ("vip", models.BooleanField()),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
