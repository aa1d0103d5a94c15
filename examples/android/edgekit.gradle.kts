// Android Gradle (Kotlin DSL): compress the model before assets are merged, and put the INT8
// artifact and its model.json into the app's assets. Apply from app/build.gradle.kts:
//     apply(from = "edgekit.gradle.kts")
// Unchanged inputs hit edgekit's cache (well under 2 s), so this is cheap on every build.

val edgekitOut = layout.buildDirectory.dir("edgekit")

val edgekitCompress by tasks.registering(Exec::class) {
    group = "ml"
    description = "Compress ml/model.keras to INT8 TFLite with edgekit; fails the build on a missed gate."
    inputs.file("ml/model.keras")
    inputs.dir("ml/calibration")
    outputs.dir(edgekitOut)
    // >>> edgekit command (tests/examples run exactly this line; $MODEL, $DATA, $OUT are the paths above)
    commandLine("edgekit", "compress", "$projectDir/ml/model.keras", "--recipe", "generic_int8", "--calibration", "$projectDir/ml/calibration", "--out", edgekitOut.get().asFile.path, "--min-agreement", "0.97", "--quiet")
    // <<< edgekit command
}

val edgekitAssets by tasks.registering(Copy::class) {
    dependsOn(edgekitCompress)
    from(edgekitOut) { include("model_int8.tflite", "model_int8.json") }
    into(layout.projectDirectory.dir("src/main/assets"))
}

tasks.named("preBuild") { dependsOn(edgekitAssets) }
